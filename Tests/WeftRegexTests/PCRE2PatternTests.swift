import Foundation
import Testing
import WeftRegex

@Suite struct PCRE2PatternTests {
    @Test func matchesTheWholeValueByDefault() throws {
        let pattern = try PCRE2Pattern("/users/[0-9]+")
        #expect(pattern.match("/users/42") == .matched)
        #expect(pattern.match("/users/42/photos") == .noMatch)
        #expect(pattern.match("/api/users/42") == .noMatch)
        #expect(pattern.isJITCompiled)
    }

    @Test func searchAnchoringMatchesAnywhere() throws {
        let pattern = try PCRE2Pattern("users/[0-9]+", anchoring: .search)
        #expect(pattern.match("/api/users/42/photos") == .matched)
        #expect(pattern.match("/api/teams/7") == .noMatch)
    }

    @Test func namedCapturesAreReturnedByName() throws {
        let pattern = try PCRE2Pattern("/users/(?<id>[0-9]+)/(?<section>[a-z]+)")
        #expect(pattern.captureNames == ["id", "section"])
        guard case .matched(let captures) = pattern.captures(in: "/users/42/photos") else {
            Issue.record("expected a match")
            return
        }
        #expect(captures.named["id"] == "42")
        #expect(captures.named["section"] == "photos")
        #expect(captures.groups[0] == "/users/42/photos")
    }

    @Test func utfModeMatchesCharactersNotBytes() throws {
        let pattern = try PCRE2Pattern("/emoji/(?<name>.)")
        guard case .matched(let captures) = pattern.captures(in: "/emoji/🍩") else {
            Issue.record("a single code point must match '.' in UTF mode")
            return
        }
        #expect(captures.named["name"] == "🍩")
        #expect(try PCRE2Pattern("caf\u{e9}").match("café") == .matched)
    }

    @Test func aBadPatternIsATypedErrorWithOffsetAndMessage() {
        #expect(throws: RegexCompileError.self) { try PCRE2Pattern("/users/(?<id>[0-9+") }
        do {
            _ = try PCRE2Pattern("/users/(?<id>[0-9+")
        } catch {
            #expect(error.pattern == "/users/(?<id>[0-9+")
            #expect(error.offset == 18)
            #expect(error.message.contains("missing terminating ]"))
            #expect(error.description.contains("at offset 18"))
        }
    }

    @Test func catastrophicBacktrackingHitsTheLimitInsteadOfHanging() throws {
        let pattern = try PCRE2Pattern("(a+)+$", anchoring: .search, limits: RegexLimits(matchLimit: 100_000, depthLimit: 1_000, maxSubjectLength: 64 * 1024))
        let subject = String(repeating: "a", count: 30_000) + "!"
        let before = RegexLimits.hits
        let started = Date()
        let outcome = pattern.match(subject)
        #expect(outcome == .limitExceeded(.matchLimit))
        #expect(!outcome.isMatch)
        #expect(RegexLimits.hits > before)
        // Not a timing assertion on performance: a hang would be minutes; the bound makes it far below a second.
        #expect(Date().timeIntervalSince(started) < 5)
    }

    @Test func anOversizedSubjectIsALimitResultNotAMatch() throws {
        // Envoy's CVE-2019-15225: a 50 KiB URI against a route regex.
        let pattern = try PCRE2Pattern("/.*")
        let uri = "/" + String(repeating: "x", count: 50 * 1024)
        let before = RegexLimits.hits
        #expect(pattern.match(uri) == .limitExceeded(.subjectLength))
        #expect(RegexLimits.hits > before)
    }

    @Test func scratchSpaceIsReusedAcrossPatternsOfDifferentSizes() throws {
        let scratch = MatchScratch()
        let small = try PCRE2Pattern("a")
        let large = try PCRE2Pattern(String(repeating: "(x)", count: 40))
        #expect(small.match("a", using: scratch) == .matched)
        guard case .matched(let captures) = large.captures(in: String(repeating: "x", count: 40), using: scratch) else {
            Issue.record("expected a match")
            return
        }
        #expect(captures.groups.count == 41)
        #expect(small.match("b", using: scratch) == .noMatch)
    }
}

@Suite struct NamedCaptureTests {
    @Test func oneMatchGivesTheNamedGroupsThatTookPart() throws {
        let pattern = try PCRE2Pattern("/(?<service>[a-z]+)/(?<id>[0-9]+)(?:/(?<rest>.*))?")
        let scratch = MatchScratch()
        #expect(pattern.namedCaptures(in: "/users/42"[...], using: scratch) == ["service": "users", "id": "42"])
        #expect(pattern.namedCaptures(in: "/users/42/photos"[...], using: scratch) == ["service": "users", "id": "42", "rest": "photos"])
        #expect(pattern.namedCaptures(in: "/users/x"[...], using: scratch) == nil)
    }

    @Test func aPatternWithoutNamesMatchesWithNoCaptures() throws {
        let pattern = try PCRE2Pattern("/items/[0-9]+")
        #expect(pattern.namedCaptures(in: "/items/7"[...], using: MatchScratch()) == [:])
    }
}
