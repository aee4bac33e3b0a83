/// The texts of one JSON value that a constraint allows, as a deterministic byte automaton: a
/// string matching a regular expression (JSON Schema `pattern`), of some length (`minLength`,
/// `maxLength`) or in a format (`date-time`, `date`, `time`, `uuid`, `ipv4`), written as
/// `json.dumps(ensure_ascii=False)` writes it; or an integer or a number within bounds
/// (`minimum`, `maximum`, `exclusiveMinimum`, `exclusiveMaximum`).
///
/// Sound before complete: every text accepted is valid under the constraint as Pydantic checks it
/// (its regular expressions are Rust's `regex`), and where the engines differ the narrower reading
/// is taken: `\d`, `\w` and `\s` are ASCII (`[0-9]`, `[A-Za-z0-9_]`, `[\t\n\v\f\r ]`), and so are
/// `\D`, `\W`, `\S` and negated classes holding them (the ASCII characters outside); `.` is any
/// character but a line break (`\n`, `\r`, U+2028, U+2029).
public struct TextPattern: Sendable, Equatable {
    /// Why a constraint cannot be followed.
    public struct Failure: Error, CustomStringConvertible, Sendable {
        public let reason: String
        /// The schema keyword the failure is about, when it is one alone (`multipleOf`).
        public var keyword: String? = nil
        public var description: String { reason }
    }

    /// The kinds of JSON value the texts are.
    public let kinds: OutputPattern.JSONKinds
    let automaton: ByteAutomaton
    /// Character counts checked while reading (a string of lengths alone; nil: none).
    let lengths: CharacterCount?

    init(kinds: OutputPattern.JSONKinds, automaton: ByteAutomaton, lengths: CharacterCount? = nil) {
        self.kinds = kinds
        self.automaton = automaton
        self.lengths = lengths
    }

    /// Whether `text` (a JSON value's text, quotes included for a string) is one of the pattern's.
    public func accepts(_ text: String) -> Bool {
        var counter = lengths.map { CharacterCounter($0) }
        for b in text.utf8 where !(counter?.read(b) ?? true) { return false }
        return automaton.accepts(text.utf8)
    }

    /// Every JSON string (as `ScalarEncoding.jsonString` writes it).
    static let anyString = try! ByteAutomaton(.repeated(.set(.all), min: 0, max: nil), encoding: .jsonString)

    /// The `maxLength` a pattern is read with when its own would take the automaton past its
    /// state cap (`string`).
    static let loweredMaximum = 256

    /// The string formats followed.
    public static let formats = ["date-time", "date", "time", "duration", "email", "hostname", "uuid", "ipv4", "ipv6", "uri"]

    /// JSON strings whose value matches `regex` (a search, as JSON Schema's `pattern` is: anchor it
    /// with `^` and `$` to match the whole value), holds `minLength` to `maxLength` characters
    /// (Unicode scalars, as Python counts them) and is in `format` (one of `formats`).
    public static func string(matching regex: String? = nil, minLength: Int = 0, maxLength: Int? = nil,
                              format: String? = nil) throws(Failure) -> TextPattern {
        var languages: [RegexNode] = []
        if let regex { languages.append(try RegexParser.search(regex)) }
        guard minLength >= 0, (maxLength ?? minLength) >= minLength else {
            throw Failure(reason: "a length from \(minLength) to \(maxLength.map(String.init) ?? "any")")
        }
        let lengths = CharacterCount(minimum: minLength, maximum: maxLength)
        var excluded: RegexNode? = nil
        if let format {
            guard let source = formatPatterns[format] else {
                throw Failure(reason: "the format '\(format)' is not supported (\(formats.joined(separator: ", ")) are)")
            }
            languages.append(try RegexParser.search("^" + source + "$"))
            if let limits = formatLimits[format] { languages.append(try RegexParser.search("^" + limits + "$")) }
            excluded = try formatExclusions[format].map { source throws(Failure) in try RegexParser.search("^" + source + "$") }
        }
        do throws(ByteAutomaton.Failure) {
            guard !languages.isEmpty else {
                // Lengths alone: any string, its characters counted while it is read.
                return TextPattern(kinds: .string, automaton: anyString, lengths: lengths.isFree ? nil : lengths)
            }
            var automaton: ByteAutomaton? = nil
            for language in languages {
                let string = try ByteAutomaton(language, encoding: .jsonString)
                automaton = try automaton.map { a throws(ByteAutomaton.Failure) in try ByteAutomaton(intersecting: a, string) } ?? string
            }
            // With a pattern, the lengths go into the automaton (which then never leads where no
            // length fits).
            if let excluded {
                automaton = try ByteAutomaton(subtracting: try ByteAutomaton(excluded, encoding: .jsonString), from: automaton!)
            }
            if !lengths.isFree {
                do {
                    automaton = try ByteAutomaton(intersecting: automaton!, lengths)
                } catch where (lengths.maximum ?? 0) > loweredMaximum {
                    // Too many states with so long a maximum (a URL's 2,083): the texts up to
                    // `loweredMaximum` characters, a narrower set, rather than a refusal.
                    automaton = try ByteAutomaton(intersecting: automaton!,
                                                  CharacterCount(minimum: lengths.minimum, maximum: loweredMaximum))
                }
            }
            guard automaton!.acceptsSomething else { throw ByteAutomaton.Failure(reason: "no string follows it") }
            return TextPattern(kinds: .string, automaton: automaton!)
        } catch {
            throw Failure(reason: error.reason)
        }
    }

    /// JSON integers (no fraction, no exponent, no `-0`) from `minimum` to `maximum` (nil: no
    /// bound on that side) and, when `multipleOf` is given, whole multiples of it (as Python's
    /// `%` finds them: exactly).
    public static func integer(minimum: Int?, maximum: Int?, multipleOf: Double? = nil) throws(Failure) -> TextPattern {
        let limit = 1_000_000_000_000_000_000
        for bound in [minimum, maximum].compactMap({ $0 }) where abs(bound) > limit {
            throw Failure(reason: "the bound \(bound) is beyond ±10^18")
        }
        if let minimum, let maximum, maximum < minimum {
            throw Failure(reason: "no integer is from \(minimum) to \(maximum)")
        }
        var branches: [RegexNode] = []
        if (minimum ?? -1) < 0 {
            // Negative values by their magnitude.
            let smallest = -min(maximum ?? -1, -1)
            branches.append(.sequence([.literal("-"), digits(from: smallest, to: minimum.map { -$0 })]))
        }
        if (maximum ?? 0) >= 0 { branches.append(digits(from: max(minimum ?? 0, 0), to: maximum)) }
        let automaton: ByteAutomaton
        do throws(ByteAutomaton.Failure) {
            automaton = try ByteAutomaton(.choice(branches), encoding: .utf8)
        } catch {
            throw Failure(reason: error.reason)
        }
        guard let multipleOf else { return TextPattern(kinds: .integer, automaton: automaton) }
        return TextPattern(kinds: .integer, automaton: try multiples(of: multipleOf, in: automaton))
    }

    /// JSON numbers without exponent (and no `-0`) whose value, read as a double as Pydantic
    /// reads it, lies within the bounds (nil: none on that side; `inclusive` false: the bound
    /// itself left out). The texts are compared as decimals with inclusive decimal bounds: an
    /// inclusive bound's shortest digits (`0.1`), an exclusive one's next double's (`x > 0` as
    /// `x ≥ 5e-324`). Rounding a decimal to a double never crosses a double, so every text
    /// accepted reads within the bounds; a text of up to 15 significant digits is accepted
    /// exactly when its double is within them.
    ///
    /// With `multipleOf` (m), only decimals that are whole multiples of m's shortest decimal
    /// digits (`0.1` for 0.1) and below 10^6 in magnitude (at most 6 integer digits): Pydantic
    /// (pydantic-core 2.50, measured) takes the remainder of the two doubles and allows it within
    /// 10^-9 of 0 or of ±m; a decimal multiple's double is within |x| · 2^-52 (< 2.3 · 10^-10
    /// there) of a multiple of m's double, so each text accepted passes, where past ~10^6 some
    /// exact multiples already fail (`1000000.1` for 0.1). Those Pydantic allows for being near a
    /// multiple (`0.30000000000000004` for 0.1) are not written.
    public static func number(minimum: (value: Double, inclusive: Bool)?,
                              maximum: (value: Double, inclusive: Bool)?,
                              multipleOf: Double? = nil) throws(Failure) -> TextPattern {
        for bound in [minimum?.value, maximum?.value].compactMap({ $0 }) where !(abs(bound) < 1e15) {
            throw Failure(reason: "the bound \(bound) is not within ±10^15")
        }
        let low = minimum.map { $0.inclusive ? $0.value : $0.value.nextUp }
        let high = maximum.map { $0.inclusive ? $0.value : $0.value.nextDown }
        if let low, let high, high < low { throw Failure(reason: "no number is within the bounds") }
        let unsigned = RegexNode.sequence([.choice([.literal("0"), .sequence([.set(digitSet(1...9)), anyDigits])]), optionalFraction])
        let automaton: ByteAutomaton
        do throws(ByteAutomaton.Failure) {
            var branches: [ByteAutomaton] = []
            if (high ?? 0) >= 0 {
                // Zero and up, as written without a sign.
                var languages = [unsigned]
                if let low, low > 0 { languages.append(atLeast(decimal(low))) }
                if let high { languages.append(atMost(decimal(high))) }
                branches.append(try intersection(languages, encoding: .utf8))
            }
            if (low ?? -1) < 0 {
                // Below zero: `-` and a magnitude that is not zero.
                let nonzero = RegexNode.choice([.sequence([.set(digitSet(1...9)), anyDigits, optionalFraction]),
                                                .sequence([.literal("0."), anyDigits, .set(digitSet(1...9)), anyDigits])])
                var languages = [nonzero]
                if let low { languages.append(atMost(decimal(-low))) }
                if let high, high < 0 { languages.append(atLeast(decimal(-high))) }
                branches.append(try intersection(languages.map { .sequence([.literal("-"), $0]) }, encoding: .utf8))
            }
            automaton = branches.count == 1 ? branches[0] : try ByteAutomaton(eitherOf: branches[0], branches[1])
            guard multipleOf != nil || automaton.acceptsSomething else { throw ByteAutomaton.Failure(reason: "no number is within the bounds") }
        } catch {
            throw Failure(reason: error.reason)
        }
        guard let multipleOf else { return TextPattern(kinds: [.number, .integer], automaton: automaton) }
        return TextPattern(kinds: [.number, .integer], automaton: try multiples(of: multipleOf, in: automaton, limitedTo: sixIntegerDigits))
    }

    /// The texts of `automaton` (and of `limit`, when given) that are whole multiples of `m`;
    /// refused as a `multipleOf` failure when m cannot be followed or no such text is left.
    private static func multiples(of m: Double, in automaton: ByteAutomaton, limitedTo limit: RegexNode? = nil) throws(Failure) -> ByteAutomaton {
        do throws(ByteAutomaton.Failure) {
            var kept = try ByteAutomaton(intersecting: automaton, try decimalMultiples(of: m))
            if let limit { kept = try ByteAutomaton(intersecting: kept, try ByteAutomaton(limit, encoding: .utf8)) }
            guard kept.acceptsSomething else { throw ByteAutomaton.Failure(reason: "no multiple of \(m) is within the bounds") }
            return kept
        } catch {
            throw Failure(reason: error.reason, keyword: "multipleOf")
        }
    }

    /// The decimal texts that are whole multiples of `m` (its shortest decimal digits, p / 10^k).
    private static func decimalMultiples(of m: Double) throws(ByteAutomaton.Failure) -> ByteAutomaton {
        guard m.isFinite, m >= 1e-9, m < 1e15 else {
            throw ByteAutomaton.Failure(reason: "multipleOf \(m) is not from 10^-9 to 10^15")
        }
        let d = decimal(m)
        let digits = (String(d.integer) + d.fraction.map(String.init).joined()).drop { $0 == "0" }
        guard digits.count <= 9, let p = Int(digits) else {
            throw ByteAutomaton.Failure(reason: "multipleOf \(m) has more than 9 significant digits")
        }
        do {
            return try ByteAutomaton(decimalMultiplesOf: p, fractionDigits: d.fraction.count)
        } catch {
            throw ByteAutomaton.Failure(reason: "multipleOf \(m) needs more than \(ByteAutomaton.maxStates) automaton states (at most ~10,000 significant units)")
        }
    }

    /// An optional `-`, at most 6 integer digits, an optional fraction: the decimals below 10^6
    /// in magnitude, whose multiples of a decimal m Pydantic's tolerance always finds (`number`).
    private static let sixIntegerDigits = RegexNode.sequence([
        .repeated(.literal("-"), min: 0, max: 1), .repeated(.set(digitSet(0...9)), min: 1, max: 6), optionalFraction])

    private static func intersection(_ languages: [RegexNode], encoding: ScalarEncoding) throws(ByteAutomaton.Failure) -> ByteAutomaton {
        var automaton = try ByteAutomaton(languages[0], encoding: encoding)
        for language in languages.dropFirst() {
            automaton = try ByteAutomaton(intersecting: automaton, try ByteAutomaton(language, encoding: encoding))
        }
        return automaton
    }

    // MARK: Decimal ranges

    /// A non-negative decimal: its integer part and the digits of its fraction (no trailing zero).
    struct Decimal: Equatable {
        var integer: Int
        var fraction: [Int]
    }

    /// `value` (0 ≤ value < 10^15) as the shortest decimal that reads back as it.
    static func decimal(_ value: Double) -> Decimal {
        // Swift writes the shortest round-trip digits, with an exponent when far from 1.
        let text = value.description
        let parts = text.split(separator: "e")
        let exponent = parts.count == 2 ? Int(parts[1])! : 0
        let mantissa = parts[0].split(separator: ".", omittingEmptySubsequences: false)
        var digits = Array(mantissa[0]).map { Int($0.asciiValue! - 48) }
        var point = digits.count + exponent
        if mantissa.count == 2 { digits += Array(mantissa[1]).map { Int($0.asciiValue! - 48) } }
        if point < 0 {
            digits = [Int](repeating: 0, count: -point) + digits
            point = 0
        }
        if point > digits.count { digits += [Int](repeating: 0, count: point - digits.count) }
        var fraction = Array(digits[point...])
        while fraction.last == 0 { fraction.removeLast() }
        return Decimal(integer: digits[..<point].reduce(0) { $0 * 10 + $1 }, fraction: fraction)
    }

    private static let anyDigits = RegexNode.repeated(.set(digitSet(0...9)), min: 0, max: nil)
    private static let optionalFraction = RegexNode.repeated(.sequence([.literal("."), .repeated(.set(digitSet(0...9)), min: 1, max: nil)]), min: 0, max: 1)

    /// Unsigned decimals (integer part without leading zeros, optional fraction) ≥ `d`.
    static func atLeast(_ d: Decimal) -> RegexNode {
        .choice([.sequence([digits(from: d.integer + 1, to: nil), optionalFraction]),
                 .sequence([.literal(String(d.integer)),
                            d.fraction.isEmpty ? optionalFraction : .sequence([.literal("."), fractionAtLeast(d.fraction[...])])])])
    }

    /// Unsigned decimals ≤ `d`.
    static func atMost(_ d: Decimal) -> RegexNode {
        var branches: [RegexNode] = []
        if d.integer > 0 { branches.append(.sequence([digits(from: 0, to: d.integer - 1), optionalFraction])) }
        let fraction = RegexNode.sequence([.literal("."), fractionAtMost(d.fraction[...], empty: false)])
        branches.append(.sequence([.literal(String(d.integer)), .repeated(fraction, min: 0, max: 1)]))
        return .choice(branches)
    }

    /// Digit strings whose value as a fraction (`0.` before them) is ≥ that of `f` (not empty;
    /// f non-empty, so the empty string, zero, is below it).
    private static func fractionAtLeast(_ f: ArraySlice<Int>) -> RegexNode {
        guard let first = f.first else { return anyDigits }
        var branches: [RegexNode] = [.sequence([.set(digitSet(first...first)), fractionAtLeast(f.dropFirst())])]
        if first < 9 { branches.append(.sequence([.set(digitSet(first + 1...9)), anyDigits])) }
        return .choice(branches)
    }

    /// Digit strings (not empty unless `empty`) whose fraction value is ≤ that of `f`.
    private static func fractionAtMost(_ f: ArraySlice<Int>, empty: Bool) -> RegexNode {
        guard let first = f.first else { return .repeated(.set(digitSet(0...0)), min: empty ? 0 : 1, max: nil) }
        var branches: [RegexNode] = [.sequence([.set(digitSet(first...first)), fractionAtMost(f.dropFirst(), empty: true)])]
        if first > 0 { branches.append(.sequence([.set(digitSet(0...first - 1)), anyDigits])) }
        if empty { branches.append(.empty) }
        return .choice(branches)
    }

    // MARK: Integer ranges

    /// Decimal texts without sign or leading zeros of low...high (0 ≤ low; high nil: no end).
    static func digits(from low: Int, to high: Int?) -> RegexNode {
        let lowDigits = Array(String(low).utf8).map { Int($0) - 48 }
        guard let high else {
            // The numbers as long as `low` from it on, then every longer one.
            let n = lowDigits.count
            let longer = RegexNode.sequence([.set(digitSet(1...9)), .repeated(.set(digitSet(0...9)), min: n, max: nil)])
            return .choice([sameLength(lowDigits, [Int](repeating: 9, count: n)), longer])
        }
        let highDigits = Array(String(high).utf8).map { Int($0) - 48 }
        var branches: [RegexNode] = []
        for n in lowDigits.count...highDigits.count {
            let a = n == lowDigits.count ? lowDigits : [1] + [Int](repeating: 0, count: n - 1)
            let b = n == highDigits.count ? highDigits : [Int](repeating: 9, count: n)
            branches.append(sameLength(a, b))
        }
        return .choice(branches)
    }

    /// The digit strings s of a's length with a ≤ s ≤ b (digit by digit).
    private static func sameLength(_ a: [Int], _ b: [Int]) -> RegexNode {
        guard let a0 = a.first, let b0 = b.first else { return .empty }
        let restA = Array(a.dropFirst()), restB = Array(b.dropFirst())
        let any = RegexNode.repeated(.set(digitSet(0...9)), min: restA.count, max: restA.count)
        if restA.allSatisfy({ $0 == 0 }) && restB.allSatisfy({ $0 == 9 }) {
            return .sequence([.set(digitSet(a0...b0)), any])
        }
        if a0 == b0 { return .sequence([.set(digitSet(a0...a0)), sameLength(restA, restB)]) }
        var branches: [RegexNode] = [.sequence([.set(digitSet(a0...a0)), sameLength(restA, restA.map { _ in 9 })])]
        if a0 + 1 <= b0 - 1 { branches.append(.sequence([.set(digitSet(a0 + 1...b0 - 1)), any])) }
        branches.append(.sequence([.set(digitSet(b0...b0)), sameLength(restB.map { _ in 0 }, restB)]))
        return .choice(branches)
    }

    private static func digitSet(_ r: ClosedRange<Int>) -> ScalarSet { ScalarSet([UInt32(48 + r.lowerBound)...UInt32(48 + r.upperBound)]) }

    // MARK: Formats

    /// Lengths a format's texts keep to besides its pattern: an email's local part of at most 64
    /// characters and labels of at most 40 (RFC 5321's 64 and 63; with four labels at most the
    /// address stays within the 254 characters `email-validator` allows).
    static let formatLimits: [String: String] = ["email": "[^@]{1,64}@(?:[^.]{1,40}\\.){1,3}[^.]{2,40}"]

    /// Texts a format leaves out: the special-use top-level domains `email-validator` refuses
    /// (RFC 6761 and others: arpa, invalid, local, localhost, onion, test), in any case.
    static let formatExclusions: [String: String] = {
        let names = ["arpa", "invalid", "local", "localhost", "onion", "test"].map { name in
            name.map { "[\($0)\($0.uppercased())]" }.joined()
        }
        return ["email": ".*\\.(?:\(names.joined(separator: "|")))"]
    }()

    /// RFC 3339 (as JSON Schema's formats are defined): a date of the Gregorian calendar from year
    /// 0001 (29 February in leap years only), a time with seconds (fractions up to microseconds)
    /// and an offset (`Z` or ±hh:mm); a duration in the grammar of its appendix A (`P1Y2M3DT4H5M6S`,
    /// `PT90M`, `P2W`; at most 6 digits a component, which keeps the sum within the 999,999,999
    /// days Python's `timedelta` holds); a UUID's 8-4-4-4-12 hex digits; an IPv4 address in
    /// dotted decimal without leading zeros; an IPv6 address in RFC 4291's text forms (RFC 3986's
    /// grammar: one `::` at most, an IPv4 address in the last 32 bits; no zone index); an email
    /// address in the narrower form every validator takes (`email-validator`, Pydantic's
    /// `EmailStr`): a dot-atom of ASCII `atext` before the `@`, then two to four DNS labels of
    /// letters, digits and single inner hyphens, the last of letters alone (`formatLimits`,
    /// `formatExclusions` keep to the lengths and leave out the special-use top-level domains);
    /// a URI as an `http` or `https` URL every URL type of Pydantic takes (`AnyUrl`, `HttpUrl`:
    /// WHATWG parsing, strict): a host of DNS labels whose last begins with a letter (so that it
    /// is never read as an IPv4 address) or a dotted-decimal IPv4 address, a port up to 65535,
    /// a path, query and fragment of RFC 3986's unreserved and sub-delimiter characters, `:`,
    /// `@` and percent escapes; no user information; a hostname of RFC 1123's labels (letters,
    /// digits, inner hyphens; at most 63 characters), at most four of them, the last of at most
    /// 61 so that the whole stays within 253, no trailing dot.
    static let formatPatterns: [String: String] = {
        let year = "(?:[0-9]{3}[1-9]|[0-9]{2}[1-9][0-9]|[0-9][1-9][0-9]{2}|[1-9][0-9]{3})"
        let leapYear = "(?:[0-9]{2}(?:0[48]|[2468][048]|[13579][26])|(?:0[48]|[2468][048]|[13579][26])00)"
        let monthDay = "(?:(?:0[13578]|1[02])-(?:0[1-9]|[12][0-9]|3[01])|(?:0[469]|11)-(?:0[1-9]|[12][0-9]|30)|02-(?:0[1-9]|1[0-9]|2[0-8]))"
        let date = "(?:\(year)-\(monthDay)|\(leapYear)-02-29)"
        let time = "(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](?:\\.[0-9]{1,6})?(?:Z|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])"
        let byte = "(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])"
        let hex = "[0-9a-fA-F]"
        let n = "[0-9]{1,6}"
        let atext = "[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]", label = "[A-Za-z0-9]+(?:-[A-Za-z0-9]+)*"
        let durationTime = "T(?:\(n)H(?:\(n)M(?:\(n)S)?)?|\(n)M(?:\(n)S)?|\(n)S)"
        let durationDate = "(?:\(n)D|\(n)M(?:\(n)D)?|\(n)Y(?:\(n)M(?:\(n)D)?)?)(?:\(durationTime))?"
        let ipv4 = "\(byte)(?:\\.\(byte)){3}"
        let h16 = "\(hex){1,4}", ls32 = "(?:\(h16):\(h16)|\(ipv4))"
        let host = "(?:\(label)\\.)*[A-Za-z][A-Za-z0-9]*(?:-[A-Za-z0-9]+)*"
        let port = "(?::(?:[0-9]|[1-9][0-9]{1,3}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5]))?"
        let pchar = "(?:[A-Za-z0-9._~!$&'()*+,;=:@-]|%\(hex){2})"
        // RFC 3986's IPv6address: the groups before `::` (none to seven) and after it.
        let ipv6 = [
            "(?:\(h16):){6}\(ls32)",
            "::(?:\(h16):){5}\(ls32)",
            "(?:\(h16))?::(?:\(h16):){4}\(ls32)",
            "(?:(?:\(h16):){0,1}\(h16))?::(?:\(h16):){3}\(ls32)",
            "(?:(?:\(h16):){0,2}\(h16))?::(?:\(h16):){2}\(ls32)",
            "(?:(?:\(h16):){0,3}\(h16))?::\(h16):\(ls32)",
            "(?:(?:\(h16):){0,4}\(h16))?::\(ls32)",
            "(?:(?:\(h16):){0,5}\(h16))?::\(h16)",
            "(?:(?:\(h16):){0,6}\(h16))?::",
        ].joined(separator: "|")
        return [
            "date-time": "\(date)T\(time)",
            "date": date,
            "time": time,
            "uuid": "\(hex){8}-\(hex){4}-\(hex){4}-\(hex){4}-\(hex){12}",
            "duration": "P(?:\(durationDate)|\(durationTime)|\(n)W)",
            "email": "\(atext)+(?:\\.\(atext)+)*@(?:\(label)\\.){1,3}[A-Za-z]{2,40}",
            "ipv4": ipv4,
            "ipv6": "(?:\(ipv6))",
            "hostname": "(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\\.){0,3}[A-Za-z0-9](?:[A-Za-z0-9-]{0,59}[A-Za-z0-9])?",
            "uri": "https?://(?:\(ipv4)|\(host))\(port)(?:/\(pchar)*)*(?:\\?(?:\(pchar)|[/?])*)?(?:#(?:\(pchar)|[/?])*)?",
        ]
    }()
}

/// Regular expressions as JSON Schema's `pattern` holds them, read into a `RegexNode`: the subset
/// whose meaning ECMA-262 and Rust's `regex` (Pydantic's engine) share. Literals and escaped
/// punctuation; `.`; classes with ranges and negation; `\d \w \s \D \W \S`; `\t \n \r \f \v`,
/// `\xhh`, `\uhhhh`; groups `( )`, `(?: )`, `(?<name> )`, `(?P<name> )`; `|`; `* + ? {n} {n,}
/// {n,m}` (and their lazy forms, the same language); `^` and `$` at the ends of a top-level
/// branch. Refused with the offset: lookaround, backreferences, `\b`, flags, nested classes and
/// class set operations, Unicode properties, anchors elsewhere.
struct RegexParser {
    private let scalars: [Unicode.Scalar]
    private var i = 0
    /// The most copies one `{n,m}` may ask for.
    static let maxCount = 1000

    private init(_ source: String) { scalars = Array(source.unicodeScalars) }

    /// The strings containing a match of `source` somewhere (each top-level branch anchored
    /// where it says so).
    static func search(_ source: String) throws(TextPattern.Failure) -> RegexNode {
        var parser = RegexParser(source)
        var branches: [RegexNode] = []
        let anything = RegexNode.repeated(.set(.all), min: 0, max: nil)
        while true {
            let start = parser.take("^")
            var items = [try parser.sequence(topLevel: true)]
            let end = parser.take("$")
            if !start { items.insert(anything, at: 0) }
            if !end { items.append(anything) }
            branches.append(.sequence(items))
            if parser.i == parser.scalars.count { break }
            guard parser.take("|") else { throw parser.failure("'\(parser.scalars[parser.i])' where a branch should end") }
        }
        return branches.count == 1 ? branches[0] : .choice(branches)
    }

    private func failure(_ what: String) -> TextPattern.Failure {
        TextPattern.Failure(reason: "pattern at offset \(i): \(what)")
    }

    private var peek: Unicode.Scalar? { i < scalars.count ? scalars[i] : nil }

    private mutating func take(_ c: Unicode.Scalar) -> Bool {
        guard peek == c else { return false }
        i += 1
        return true
    }

    /// The deepest nesting of groups read.
    static let maxDepth = 64
    private var depth = 0

    private mutating func alternation() throws(TextPattern.Failure) -> RegexNode {
        var branches = [try sequence(topLevel: false)]
        while take("|") { branches.append(try sequence(topLevel: false)) }
        return branches.count == 1 ? branches[0] : .choice(branches)
    }

    /// Items up to `|`, `)` or the end (at the top level, also up to a `$` that ends the branch).
    private mutating func sequence(topLevel: Bool) throws(TextPattern.Failure) -> RegexNode {
        var items: [RegexNode] = []
        while let c = peek, c != "|", c != ")" {
            if c == "$" {
                if topLevel && (i + 1 == scalars.count || scalars[i + 1] == "|") { break }
                throw failure("'$' is supported only at the end of a top-level branch")
            }
            if c == "^" { throw failure("'^' is supported only at the start of a top-level branch") }
            var item = try atom()
            item = try quantified(item)
            items.append(item)
        }
        if topLevel, peek == ")" { throw failure("an unmatched ')'") }
        return items.count == 1 ? items[0] : .sequence(items)
    }

    private mutating func quantified(_ item: RegexNode) throws(TextPattern.Failure) -> RegexNode {
        var counts: (Int, Int?)
        switch peek {
        case "*": counts = (0, nil)
        case "+": counts = (1, nil)
        case "?": counts = (0, 1)
        case "{":
            guard let parsed = try counted() else { throw failure("a '{' that is not a count: write '\\{'") }
            counts = parsed
            i -= 1
        default: return item
        }
        i += 1
        _ = take("?")  // lazy: the same strings
        if let c = peek, "*+?{".unicodeScalars.contains(c) { throw failure("a quantifier after a quantifier") }
        return .repeated(item, min: counts.0, max: counts.1)
    }

    /// `{n}`, `{n,}` or `{n,m}` at `i` (left on its `}`), or nil when it is not one.
    private mutating func counted() throws(TextPattern.Failure) -> (Int, Int?)? {
        let start = i
        i += 1
        func number(_ p: inout RegexParser) -> Int? {
            var n = 0, any = false
            while let c = p.peek, ("0"..."9").contains(c) {
                n = min(n * 10 + Int(c.value - 48), 1_000_000)
                any = true
                p.i += 1
            }
            return any ? n : nil
        }
        guard let low = number(&self) else { i = start; return nil }
        var high: Int? = low
        if take(",") { high = number(&self) }
        guard peek == "}" else { i = start; return nil }
        i += 1
        if let high, high < low { throw failure("the count {\(low),\(high)} runs backwards") }
        if max(low, high ?? 0) > Self.maxCount { throw failure("a count over \(Self.maxCount)") }
        return (low, high)
    }

    private mutating func atom() throws(TextPattern.Failure) -> RegexNode {
        let c = scalars[i]
        i += 1
        switch c {
        case "(":
            if take("?") {
                if take(":") {
                } else if take("P") || peek == "<" {
                    guard take("<"), let close = scalars[i...].firstIndex(of: ">"), close > i,
                          scalars[i..<close].allSatisfy({ $0.properties.isAlphabetic || $0 == "_" || ("0"..."9").contains($0) }) else {
                        throw failure("lookbehind or a malformed group name")
                    }
                    i = close + 1
                } else {
                    throw failure("'(?' groups other than '(?:' and named groups (lookaround, flags) are not supported")
                }
            }
            depth += 1
            guard depth <= Self.maxDepth else { throw failure("groups nested more than \(Self.maxDepth) deep") }
            let inner = try alternation()
            depth -= 1
            guard take(")") else { throw failure("a '(' without its ')'") }
            return inner
        case "[": return .set(try characterClass())
        case ".": return .set(Self.dot)
        case "\\": return .set(try escape().set)
        case ")", "*", "+", "?": throw failure("'\(c)' with nothing before it to apply to")
        case "{":
            i -= 1
            if try counted() != nil { throw failure("a count with nothing before it") }
            throw failure("a '{' that is not a count: write '\\{'")
        case "]", "}": throw failure("an unescaped '\(c)' (ECMA-262 and Rust read it differently): write '\\\(c)'")
        default: return .set(ScalarSet(c))
        }
    }

    /// Any character but a line break.
    static let dot = ScalarSet.all.subtracting(ScalarSet([0x0A...0x0A, 0x0D...0x0D, 0x2028...0x2029]))
    static let asciiDigit = ScalarSet("0"..."9")
    static let asciiWord = ScalarSet([0x30...0x39, 0x41...0x5A, 0x5F...0x5F, 0x61...0x7A])
    static let asciiSpace = ScalarSet([0x09...0x0D, 0x20...0x20])
    static let ascii = ScalarSet([0...0x7F])

    /// An escape after `\`: its characters, and whether they read differently across engines
    /// beyond ASCII (a negated class holding one takes only ASCII characters).
    private mutating func escape() throws(TextPattern.Failure) -> (set: ScalarSet, unicodeDependent: Bool) {
        guard let c = peek else { throw failure("a '\\' at the end") }
        i += 1
        switch c {
        case "d": return (Self.asciiDigit, true)
        case "w": return (Self.asciiWord, true)
        case "s": return (Self.asciiSpace, true)
        case "D": return (Self.ascii.subtracting(Self.asciiDigit), true)
        case "W": return (Self.ascii.subtracting(Self.asciiWord), true)
        case "S": return (Self.ascii.subtracting(Self.asciiSpace), true)
        case "t": return (ScalarSet("\t"), false)
        case "n": return (ScalarSet("\n"), false)
        case "r": return (ScalarSet("\r"), false)
        case "f": return (ScalarSet([0x0C...0x0C]), false)
        case "v": return (ScalarSet([0x0B...0x0B]), false)
        case "x", "u":
            let count = c == "x" ? 2 : 4
            guard i + count <= scalars.count, let value = UInt32(String(String.UnicodeScalarView(scalars[i..<i + count])), radix: 16),
                  !(0xD800...0xDFFF).contains(value) else {
                throw failure("'\\\(c)' takes \(count) hex digits (of a character that is not a surrogate)")
            }
            i += count
            return (ScalarSet([value...value]), false)
        default:
            guard c.isASCII, !c.properties.isAlphabetic, !("0"..."9").contains(c) else {
                throw failure("the escape '\\\(c)' is not supported")
            }
            return (ScalarSet(c), false)
        }
    }

    /// After `[`: the class up to its `]`.
    private mutating func characterClass() throws(TextPattern.Failure) -> ScalarSet {
        let negated = take("^")
        var set = ScalarSet.none, unicodeDependent = false
        if peek == "]" { throw failure("a class beginning with ']' (ECMA-262 and Rust read it differently): write '\\]'") }
        while true {
            guard let c = peek else { throw failure("a '[' without its ']'") }
            if c == "]" { i += 1; break }
            if c == "[" { throw failure("an unescaped '[' inside a class (Rust nests classes): write '\\['") }
            if i + 1 < scalars.count, ["&&", "--", "~~"].contains(String(String.UnicodeScalarView(scalars[i...i + 1]))) {
                throw failure("'\(c)\(c)' inside a class (a Rust class operation): escape one of them")
            }
            let (low, lowDependent) = try classMember()
            if peek == "-", i + 1 < scalars.count, scalars[i + 1] != "]" {
                i += 1
                let (high, highDependent) = try classMember()
                guard !lowDependent, !highDependent, low.ranges.count == 1, high.ranges.count == 1,
                      low.ranges[0].count == 1, high.ranges[0].count == 1 else {
                    throw failure("a range with a class at one end")
                }
                guard low.ranges[0].lowerBound <= high.ranges[0].lowerBound else { throw failure("a range that runs backwards") }
                set = set.union(ScalarSet([low.ranges[0].lowerBound...high.ranges[0].lowerBound]))
            } else {
                set = set.union(low)
                unicodeDependent = unicodeDependent || lowDependent
            }
        }
        guard negated else { return set }
        return (unicodeDependent ? Self.ascii : ScalarSet.all).subtracting(set)
    }

    private mutating func classMember() throws(TextPattern.Failure) -> (ScalarSet, Bool) {
        let c = scalars[i]
        i += 1
        if c == "\\" {
            if peek == "b" { throw failure("'\\b' inside a class (backspace in ECMA-262, refused by Rust)") }
            return try escape()
        }
        return (ScalarSet(c), false)
    }
}
