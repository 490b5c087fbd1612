#!/usr/bin/env bash
# Builds products the way they are deployed (and benchmarked):
#   scripts/build-release.sh [--package-path DIR] [--scratch-path DIR] PRODUCT...
# Default: weft-proxy and weft into .build-release; the binaries land in .build-release/release/.
#
# - release mode with the Swift runtime linked in (--static-swift-stdlib): calls into the runtime,
#   retain and release above all, are direct instead of through the PLT;
# - no run-time exclusivity checks (-enforce-exclusivity=unchecked), for every module, dependencies
#   included: the checks (a call into the runtime around each access to a class's stored property,
#   a global or an escaping closure's capture, to trap on overlapping modifications) were 10-15% of
#   the instructions a proxied request ran (callgrind), most of them inside NIO. Debug builds, which
#   the test suite runs, keep them, and the Swift standard library itself ships without them.
# - linked by lld with packed relative relocations (-z pack-relative-relocs, glibc ≥ 2.36): the table
#   the loader reads at every start to relocate the binary is 26 KB instead of gold's 3.3 MB;
# - no exported symbols (-Xlinker --no-export-dynamic): nothing loads plugins into the executable,
#   and the Swift runtime's start-up `dladdr` read the whole exported table, 2.5 MB of every proxy's
#   resident memory. They named frames only in the stack trace of a `try!` that failed; release
#   builds print none for traps (a failed precondition, a nil unwrapped, a bad cast) or signals.
# - the toolchain's crash reporter, swift-backtrace-static, copied next to the binaries as
#   `swift-backtrace`: the Swift runtime finds it there and, when the process crashes, for any
#   reason, it prints every thread's frames with function, file and line, read from the binary's
#   symbol table and debug information (neither is stripped). Deploy it with the binaries.
# - the code a proxy runs laid out first and together, both written by scripts/link-order.py from
#   callgrind profiles: the input sections an idle proxy runs first (scripts/weft-proxy-idle.lds, a
#   linker script that only adds them to the start of .text), then the functions a working proxy
#   runs by instruction count (scripts/weft-proxy.order, lld's --symbol-ordering-file; every
#   function in its own section). The kernel maps code 64 KB around each page touched, so code run
#   at start-up but spread over the 30 MB text section keeps megabytes resident. lld writes a link
#   map of each product to $scratch_path/link-maps/ for link-order.py.
# - the C++ standard library linked in as well (libstdc++.a; the Swift runtime and Foundation's ICU
#   are C++): linked dynamically, libstdc++.so's symbol tables, read by the loader at every start,
#   and the 64 KB runs mapped around each page of its code touched kept 1.1 MB of an idle proxy
#   resident (16.8 -> 15.7 MB, same objects linked both ways). SwiftPM asks for `-lstdc++`; a
#   directory holding only the archive, searched first, makes that name resolve to it. The GCC
#   runtime library exception allows linking it in.
# lld with packed relocations takes 6.5 MB off an idle proxy's resident memory (pages read once at
# start-up that stay mapped), the link order another 6.6 (README, Performance).
# Changing these compiler flags in an existing scratch directory needs its objects deleted first
# (find .build-release -name '*.o' -delete): swiftc skips code generation for a module whose IR
# has not changed, whatever the flags.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/opt/swift/usr/bin:$PATH"
package_path=.
scratch_path=.build-release
products=()
while [ $# -gt 0 ]; do
  case "$1" in
    --package-path) package_path=$2; shift 2 ;;
    --scratch-path) scratch_path=$2; shift 2 ;;
    *) products+=("$1"); shift ;;
  esac
done
[ ${#products[@]} -gt 0 ] || products=(weft-proxy weft)
link_order=()
if [ "$package_path" = . ] && [ -f scripts/weft-proxy.order ]; then
  # Names the binary lacks (code changed since the profile) are skipped. Weft's products only:
  # the benchmarks' NIO floors are linked as they come.
  # Each function in its own section (swiftc gives only some their own by default), so the
  # linker can place it, and drop it when nothing calls it.
  link_order=(-Xswiftc -Xfrontend -Xswiftc -function-sections -Xlinker --symbol-ordering-file="$PWD/scripts/weft-proxy.order" -Xlinker --no-warn-symbol-ordering)
  if [ -f scripts/weft-proxy-idle.lds ]; then
    link_order+=(-Xlinker -T -Xlinker "$PWD/scripts/weft-proxy-idle.lds")
  fi
fi
static_cxx=()
libstdcxx_archive=$(clang -print-file-name=libstdc++.a)
if [ -f "$libstdcxx_archive" ]; then
  mkdir -p "$scratch_path/static-libstdc++"
  ln -sf "$libstdcxx_archive" "$scratch_path/static-libstdc++/libstdc++.a"
  static_cxx=(-Xswiftc -L -Xswiftc "$(cd "$scratch_path/static-libstdc++" && pwd)")
else
  echo "build-release: no libstdc++.a (Debian: libstdc++-12-dev); linking the shared libstdc++" >&2
fi
# SwiftPM takes a binary it has linked for up to date while its objects and flags stand, so three
# kinds of stale binary are dropped before building: one older than the order file or the idle
# linker script (SwiftPM does not track them), one linked to the dynamic Swift runtime (`swift package benchmark` builds the
# same products in the same place that way, and SwiftPM keeps that build plan too), and one linked
# to the shared libstdc++ when the archive is there (SwiftPM does not relink for a new -L either).
for product in "${products[@]}"; do
  binary="$scratch_path/release/$product"
  if [ -f "$binary" ] && [ ${#link_order[@]} -gt 0 ] && { [ scripts/weft-proxy.order -nt "$binary" ] || [ scripts/weft-proxy-idle.lds -nt "$binary" ]; }; then
    rm -f "$binary"
  fi
  link_map=()
  if [ "$package_path" = . ]; then
    mkdir -p "$scratch_path/link-maps"
    link_map=(-Xlinker -Map="$(cd "$scratch_path/link-maps" && pwd)/$product.map")
  fi
  stale_libraries=(-e libswiftCore.so)
  [ ${#static_cxx[@]} -gt 0 ] && stale_libraries+=(-e libstdc++.so)
  if ldd "$binary" 2>/dev/null | grep -qF "${stale_libraries[@]}"; then
    rm -f "$binary" "$scratch_path/release.yaml"
  fi
  swift build -c release --static-swift-stdlib --package-path "$package_path" --scratch-path "$scratch_path" \
    --product "$product" -Xswiftc -enforce-exclusivity=unchecked -Xswiftc -use-ld=lld -Xlinker -z -Xlinker pack-relative-relocs -Xlinker --no-export-dynamic \
    "${link_order[@]}" "${link_map[@]}" "${static_cxx[@]}"
done
if [ "$package_path" = . ]; then
  toolchain=$(dirname "$(dirname "$(command -v swift)")")
  cp -p "$toolchain/libexec/swift/linux/swift-backtrace-static" "$scratch_path/release/swift-backtrace"
fi
