import Hummingbird
import Qwen

extension Response {
    /// A JSON response (`JSONValue.jsonText`: compact, keys in their order).
    static func json(_ value: JSONValue, status: HTTPResponse.Status = .ok) -> Response {
        Response(status: status, headers: [.contentType: "application/json"],
                 body: ResponseBody(byteBuffer: ByteBuffer(string: value.jsonText)))
    }
}
