import HTTPTypes
import Hummingbird
import Qwen

/// An error as the OpenAI API reports it: an HTTP status and
/// `{"error": {"message", "type", "param", "code"}}`.
///
/// An `HTTPResponseError`: thrown from a route on any Hummingbird router, it becomes its response.
public struct OpenAIError: HTTPResponseError, CustomStringConvertible, Sendable, Equatable {
    public var status: HTTPResponse.Status
    public var message: String
    /// OpenAI's error type: `invalid_request_error`, `authentication_error`, `not_found_error`,
    /// `rate_limit_error`, `server_error`, `timeout_error`.
    public var type: String
    /// The request field at fault, when there is one.
    public var param: String?
    public var code: String?

    public init(status: HTTPResponse.Status, message: String, type: String, param: String? = nil, code: String? = nil) {
        self.status = status
        self.message = message
        self.type = type
        self.param = param
        self.code = code
    }

    public var description: String { "\(status.code) \(type): \(message)" }

    static func invalidRequest(_ message: String, param: String? = nil, code: String? = nil) -> OpenAIError {
        OpenAIError(status: .badRequest, message: message, type: "invalid_request_error", param: param, code: code)
    }

    static func unsupported(_ param: String, _ why: String) -> OpenAIError {
        .invalidRequest("'\(param)' is not supported by this server: \(why)", param: param, code: "unsupported_parameter")
    }

    static let unauthorized = OpenAIError(
        status: .unauthorized, message: "missing or incorrect API key: send it as 'Authorization: Bearer KEY'",
        type: "authentication_error", code: "invalid_api_key")

    static func modelNotFound(_ name: String, available: String) -> OpenAIError {
        OpenAIError(status: .notFound, message: "the model '\(name)' does not exist; this server has '\(available)'",
                    type: "invalid_request_error", param: "model", code: "model_not_found")
    }

    static func routeNotFound(_ method: HTTPRequest.Method, _ path: String) -> OpenAIError {
        OpenAIError(status: .notFound, message: "no route \(method) \(path)", type: "not_found_error")
    }

    static func bodyTooLarge(limit: Int) -> OpenAIError {
        OpenAIError(status: .contentTooLarge, message: "the request body is larger than the server's limit of \(limit) bytes",
                    type: "invalid_request_error", code: "request_too_large")
    }

    static func queueFull(limit: Int) -> OpenAIError {
        OpenAIError(status: .tooManyRequests, message: "the server is busy: \(limit) requests are already waiting; retry later",
                    type: "rate_limit_error", code: "queue_full")
    }

    static let shuttingDown = OpenAIError(status: .serviceUnavailable, message: "the server is shutting down",
                                          type: "server_error", code: "shutting_down")

    static func timedOut(after seconds: Double) -> OpenAIError {
        OpenAIError(status: .gatewayTimeout, message: "the request did not finish within the server's timeout of \(seconds) s",
                    type: "timeout_error", code: "timeout")
    }

    static func server(_ error: any Error) -> OpenAIError {
        OpenAIError(status: .internalServerError, message: "generation failed: \(error)", type: "server_error")
    }

    /// The JSON body: `{"error": {...}}` with `param` and `code` as null when absent.
    var json: JSONValue {
        ["error": ["message": .string(message), "type": .string(type),
                   "param": param.map(JSONValue.string) ?? .null, "code": code.map(JSONValue.string) ?? .null]]
    }

    func response() -> Response { .json(json, status: status) }

    public func response(from request: Request, context: some RequestContext) throws -> Response { response() }
}
