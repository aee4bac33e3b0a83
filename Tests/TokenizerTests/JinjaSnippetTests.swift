import Foundation
import Testing

@testable import Tokenizer

/// Small templates rendered with transformers' own Jinja environment (Data/jinja_snippets.jsonl,
/// written by scripts/tokenizer_reference.py): filters, tests, operators, Python `str()` output,
/// scoping, macros, whitespace control. Where Jinja raises, we must fail too.
@Suite struct JinjaSnippetTests {
    struct Snippet: CustomTestStringConvertible {
        var index: Int
        var template: String
        var context: [String: JSONValue]
        var expected: String?
        var expectedError: String?
        var testDescription: String { "#\(index) \(template.prefix(60))" }
    }

    static let snippets: [Snippet] = {
        guard let rows = try? TestData.orderedJSONLines("jinja_snippets.jsonl") else { return [] }
        return rows.enumerated().map { i, row in
            var context: [String: JSONValue] = [:]
            for (k, v) in row["context"]?.objectValue?.entries ?? [] { context[k] = v }
            return Snippet(
                index: i, template: row["template"]!.stringValue!, context: context,
                expected: row["expected"]?.stringValue, expectedError: row["expected_error"]?.stringValue)
        }
    }()

    @Test(arguments: snippets) func rendersLikeJinja(_ snippet: Snippet) throws {
        do {
            let template = try ChatTemplate(snippet.template)
            let rendered = try template.render(snippet.context)
            guard let expected = snippet.expected else {
                Issue.record("rendered \(visible(rendered)) where Jinja raised \(snippet.expectedError ?? "")")
                return
            }
            #expect(rendered.unicodeScalars.elementsEqual(expected.unicodeScalars),
                "\n--- got ---\n\(visible(rendered))\n--- expected ---\n\(visible(expected))")
        } catch let error as ChatTemplateError {
            #expect(snippet.expectedError != nil, "threw \(error) where Jinja rendered \(visible(snippet.expected ?? ""))")
            if snippet.expectedError == "TemplateError", case .raised = error {} else if snippet.expectedError == "TemplateError" {
                Issue.record("expected raise_exception, got \(error)")
            }
        }
    }
}
