import CPCRE2
import Synchronization

/// A PCRE2 pattern compiled once (JIT when available) and matched with bounded work.
///
/// Every match is bounded three ways, so that neither a hostile pattern nor a hostile input
/// (Envoy's CVE-2019-15225: a 50 KiB URI against a backtracking regex) can hang a proxy:
/// a maximum subject length, a match limit and a depth limit (the JIT stack bounds depth
/// when JIT is in use). Hitting any of them is ``MatchOutcome/limitExceeded(_:)``, never a
/// match, never a crash, and it is counted in ``RegexLimits/hits``.
///
/// The compiled code is immutable and shared by all threads; per-match scratch space
/// lives in a ``MatchScratch`` that each connection (or thread) owns.
public final class PCRE2Pattern: Sendable {
    /// The pattern as written in config.
    public let pattern: String
    /// How the pattern must match: the whole value (the default) or anywhere in it.
    public let anchoring: Anchoring
    /// The bounds every match of this pattern respects.
    public let limits: RegexLimits
    /// Named capture groups, in group order.
    public let captureNames: [String]
    /// Number of capture groups (named or not).
    public let captureCount: Int
    /// Whether the pattern was JIT-compiled (false only where PCRE2 has no JIT).
    public let isJITCompiled: Bool

    nonisolated(unsafe) private let code: OpaquePointer
    nonisolated(unsafe) private let matchContext: OpaquePointer
    private let namedGroups: [(name: String, group: Int)]

    /// How a pattern is anchored.
    public enum Anchoring: Sendable, Equatable {
        /// The pattern must match the entire value (like linkerd's and RE2's full matches).
        case fullValue
        /// The pattern may match any part of the value.
        case search
    }

    /// Compiles `pattern` in UTF mode, anchored at both ends unless `anchoring` is `.search`.
    /// - Throws: ``RegexCompileError`` with PCRE2's message and the offset where it failed.
    public init(_ pattern: String, anchoring: Anchoring = .fullValue, limits: RegexLimits = .default) throws(RegexCompileError) {
        self.pattern = pattern
        self.anchoring = anchoring
        self.limits = limits

        var options = UInt32(PCRE2_UTF)
        if anchoring == .fullValue {
            options |= UInt32(PCRE2_ANCHORED) | UInt32(PCRE2_ENDANCHORED)
        }
        var errorCode: Int32 = 0
        var errorOffset = 0
        let compiled: OpaquePointer? = pattern.utf8.withContiguousStorageIfAvailable { bytes in
            pcre2_compile_8(bytes.baseAddress, bytes.count, options, &errorCode, &errorOffset, nil)
        } ?? {
            var copy = pattern
            return copy.withUTF8 { bytes in
                pcre2_compile_8(bytes.baseAddress, bytes.count, options, &errorCode, &errorOffset, nil)
            }
        }()
        guard let compiled else {
            throw RegexCompileError(pattern: pattern, offset: errorOffset, message: pcre2Message(errorCode))
        }
        self.code = compiled
        self.isJITCompiled = pcre2_jit_compile_8(compiled, UInt32(PCRE2_JIT_COMPLETE)) == 0

        guard let context = pcre2_match_context_create_8(nil) else {
            pcre2_code_free_8(compiled)
            throw RegexCompileError(pattern: pattern, offset: 0, message: "out of memory creating a match context")
        }
        pcre2_set_match_limit_8(context, limits.matchLimit)
        pcre2_set_depth_limit_8(context, limits.depthLimit)
        self.matchContext = context

        var captureCount: UInt32 = 0
        pcre2_pattern_info_8(compiled, UInt32(PCRE2_INFO_CAPTURECOUNT), &captureCount)
        self.captureCount = Int(captureCount)
        let named = Self.readNameTable(compiled)
        self.namedGroups = named
        self.captureNames = named.sorted { $0.group < $1.group }.map(\.name)
    }

    deinit {
        pcre2_match_context_free_8(matchContext)
        pcre2_code_free_8(code)
    }

    /// Whether `subject` matches, within the limits.
    public func match(_ subject: String, using scratch: MatchScratch? = nil) -> MatchOutcome {
        match(subject[...], using: scratch)
    }

    /// Whether `subject` matches, within the limits; matches the substring's bytes in place.
    public func match(_ subject: Substring, using scratch: MatchScratch? = nil) -> MatchOutcome {
        switch self.run(subject, scratch: scratch ?? MatchScratch()) {
        case .matched: return .matched
        case .noMatch: return .noMatch
        case .limitExceeded(let limit): return .limitExceeded(limit)
        }
    }

    /// Matches `subject` and returns its capture groups, or why there is none.
    public func captures(in subject: String, using scratch: MatchScratch? = nil) -> CaptureOutcome {
        let scratch = scratch ?? MatchScratch()
        switch self.run(subject[...], scratch: scratch) {
        case .noMatch: return .noMatch
        case .limitExceeded(let limit): return .limitExceeded(limit)
        case .matched:
            let ovector = pcre2_get_ovector_pointer_8(scratch.matchData(capacity: captureCount + 1))!
            let unset = weft_pcre2_unset()
            let utf8 = subject.utf8
            var groups: [Substring?] = []
            groups.reserveCapacity(captureCount + 1)
            for group in 0...captureCount {
                let start = ovector[2 * group], end = ovector[2 * group + 1]
                if start == unset || end == unset {
                    groups.append(nil)
                } else {
                    let lower = utf8.index(utf8.startIndex, offsetBy: start)
                    let upper = utf8.index(utf8.startIndex, offsetBy: end)
                    groups.append(subject[lower..<upper])
                }
            }
            var named: [String: Substring] = [:]
            for (name, group) in namedGroups {
                if let value = groups[group] { named[name] = value }
            }
            return .matched(RegexCaptures(groups: groups, named: named))
        }
    }

    /// Matches `subject` once and returns its named groups that took part (an empty dictionary
    /// for a pattern without named groups), or nil when it does not match (or hits a limit).
    /// What routing calls: one match, one dictionary, no intermediate arrays.
    public func namedCaptures(in subject: Substring, using scratch: MatchScratch) -> [String: String]? {
        guard case .matched = run(subject, scratch: scratch) else { return nil }
        guard !namedGroups.isEmpty else { return [:] }
        let ovector = pcre2_get_ovector_pointer_8(scratch.matchData(capacity: captureCount + 1))!
        let unset = weft_pcre2_unset()
        return withBytes(of: subject) { bytes in
            var named: [String: String] = [:]
            named.reserveCapacity(namedGroups.count)
            for (name, group) in namedGroups {
                let start = ovector[2 * group], end = ovector[2 * group + 1]
                guard start != unset, end != unset else { continue }
                named[name] = String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<end]), as: UTF8.self)
            }
            return named
        }
    }

    private enum RawOutcome { case matched, noMatch, limitExceeded(RegexLimit) }

    private func run(_ subject: Substring, scratch: MatchScratch) -> RawOutcome {
        let matchData = scratch.matchData(capacity: captureCount + 1)
        let limit = limits.maxSubjectLength
        let result: Int32? = withBytes(of: subject) { bytes in
            bytes.count > limit ? nil : execute(bytes, matchData)
        }
        guard let result else {
            RegexLimits.recordHit()
            return .limitExceeded(.subjectLength)
        }
        if result >= 0 { return .matched }
        switch result {
        case PCRE2_ERROR_NOMATCH:
            return .noMatch
        case PCRE2_ERROR_MATCHLIMIT:
            RegexLimits.recordHit()
            return .limitExceeded(.matchLimit)
        case PCRE2_ERROR_DEPTHLIMIT, PCRE2_ERROR_JIT_STACKLIMIT, PCRE2_ERROR_HEAPLIMIT:
            RegexLimits.recordHit()
            return .limitExceeded(.depthLimit)
        default:
            // Any other matching error is treated as a bounded failure, never as a match.
            RegexLimits.recordHit()
            return .limitExceeded(.matchLimit)
        }
    }

    /// The substring's UTF-8 bytes, in place when its storage is contiguous (always, for native
    /// strings), else from a copy.
    private func withBytes<Result>(of subject: Substring, _ body: (UnsafeBufferPointer<UInt8>) -> Result) -> Result {
        if let inPlace = subject.utf8.withContiguousStorageIfAvailable(body) { return inPlace }
        var copy = String(subject)
        return copy.withUTF8(body)
    }

    /// One match over UTF-8 bytes. Swift strings are valid UTF-8, so PCRE2's UTF check is skipped.
    @inline(__always)
    private func execute(_ bytes: UnsafeBufferPointer<UInt8>, _ matchData: OpaquePointer) -> Int32 {
        if isJITCompiled {
            return pcre2_jit_match_8(code, bytes.baseAddress, bytes.count, 0, 0, matchData, matchContext)
        }
        return pcre2_match_8(code, bytes.baseAddress, bytes.count, 0, UInt32(PCRE2_NO_UTF_CHECK), matchData, matchContext)
    }

    private static func readNameTable(_ code: OpaquePointer) -> [(name: String, group: Int)] {
        var count: UInt32 = 0
        var entrySize: UInt32 = 0
        var table: UnsafePointer<UInt8>?
        pcre2_pattern_info_8(code, UInt32(PCRE2_INFO_NAMECOUNT), &count)
        guard count > 0 else { return [] }
        pcre2_pattern_info_8(code, UInt32(PCRE2_INFO_NAMEENTRYSIZE), &entrySize)
        pcre2_pattern_info_8(code, UInt32(PCRE2_INFO_NAMETABLE), &table)
        guard let table else { return [] }
        var result: [(String, Int)] = []
        for index in 0..<Int(count) {
            let entry = table + index * Int(entrySize)
            let group = Int(entry[0]) << 8 | Int(entry[1])
            let name = String(cString: entry + 2)
            result.append((name, group))
        }
        return result
    }
}

/// Scratch space for matching (PCRE2 match data), reused across matches by one owner.
/// Not thread-safe: keep one per connection or per thread.
public final class MatchScratch {
    private var data: OpaquePointer?
    private var capacity = 0

    public init() {}

    deinit {
        if let data { pcre2_match_data_free_8(data) }
    }

    func matchData(capacity needed: Int) -> OpaquePointer {
        if let data, capacity >= needed { return data }
        if let data { pcre2_match_data_free_8(data) }
        let newCapacity = max(needed, 16)
        let created = pcre2_match_data_create_8(UInt32(newCapacity), nil)!
        data = created
        capacity = newCapacity
        return created
    }
}

/// The result of a bounded match.
public enum MatchOutcome: Sendable, Equatable {
    case matched
    case noMatch
    /// The match gave up at a bound: treated as no match, and counted.
    case limitExceeded(RegexLimit)

    /// True only for a real match.
    public var isMatch: Bool { self == .matched }
}

/// The result of a bounded match that collects capture groups.
public enum CaptureOutcome: Sendable {
    case matched(RegexCaptures)
    case noMatch
    case limitExceeded(RegexLimit)
}

/// Capture groups of a match: group 0 is the whole match.
public struct RegexCaptures: Sendable {
    /// Every group by number; `nil` where the group did not participate.
    public let groups: [Substring?]
    /// Named groups that participated in the match.
    public let named: [String: Substring]
}

/// Which bound stopped a match.
public enum RegexLimit: String, Sendable, Equatable {
    case subjectLength = "subject_length"
    case matchLimit = "match_limit"
    case depthLimit = "depth_limit"
}

/// The bounds on one match, and the process-wide count of matches that hit one.
public struct RegexLimits: Sendable, Equatable {
    /// PCRE2's match limit (calls of its internal match function, or JIT equivalents).
    public var matchLimit: UInt32
    /// PCRE2's depth limit (backtracking depth for the interpreter).
    public var depthLimit: UInt32
    /// Longest subject, in UTF-8 bytes, that is matched at all.
    public var maxSubjectLength: Int

    public init(matchLimit: UInt32, depthLimit: UInt32, maxSubjectLength: Int) {
        self.matchLimit = matchLimit
        self.depthLimit = depthLimit
        self.maxSubjectLength = maxSubjectLength
    }

    /// 100 000 match steps, depth 1 000, subjects up to 8 KiB: generous for any route pattern,
    /// and a catastrophic pattern gives up within a millisecond or so.
    public static let `default` = RegexLimits(matchLimit: 100_000, depthLimit: 1_000, maxSubjectLength: 8 * 1024)

    private static let hitCounter = Atomic<Int>(0)

    /// How many matches, in this process, stopped at a bound.
    public static var hits: Int { hitCounter.load(ordering: .relaxed) }

    static func recordHit() { hitCounter.add(1, ordering: .relaxed) }
}

/// A pattern that does not compile: the pattern, the offset of the error and PCRE2's message.
public struct RegexCompileError: Error, Sendable, Equatable, CustomStringConvertible {
    public let pattern: String
    public let offset: Int
    public let message: String

    public var description: String {
        "invalid regex '\(pattern)' at offset \(offset): \(message)"
    }
}

private func pcre2Message(_ code: Int32) -> String {
    var buffer = [UInt8](repeating: 0, count: 256)
    let length = pcre2_get_error_message_8(code, &buffer, buffer.count)
    guard length > 0 else { return "PCRE2 error \(code)" }
    return String(decoding: buffer[0..<Int(length)], as: UTF8.self)
}
