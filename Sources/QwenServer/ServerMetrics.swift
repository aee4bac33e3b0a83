import CoreMetrics
import Prometheus

/// The server's metrics, recorded through swift-metrics into a Prometheus registry of the
/// server's own (no global bootstrap: a host app keeps its own metrics system); `GET /metrics`
/// prints the registry.
final class ServerMetrics: Sendable {
    let registry: PrometheusCollectorRegistry
    private let factory: PrometheusMetricsFactory
    let promptTokens: CoreMetrics.Counter
    /// Prompt chunks run between decode steps (`Generation.prefillChunk`).
    let promptChunks: CoreMetrics.Counter
    /// Prompt tokens taken from the prompt cache instead of being run (`PromptCache`).
    let promptCacheTokens: CoreMetrics.Counter
    /// Bytes of KV cache the prompt cache holds.
    let promptCacheBytes: CoreMetrics.Gauge
    /// Tokens of finished conversations run again while idle, for the prompt cache.
    let warmedTokens: CoreMetrics.Counter
    let generatedTokens: CoreMetrics.Counter
    let timeToFirstToken: CoreMetrics.Timer
    let interTokenLatency: CoreMetrics.Timer
    let queueDepth: CoreMetrics.Gauge
    let activeSequences: CoreMetrics.Gauge
    /// Sequences stepped together in one scheduler round.
    let batchSize: CoreMetrics.Recorder

    init(registry: PrometheusCollectorRegistry) {
        self.registry = registry
        var factory = PrometheusMetricsFactory(registry: registry)
        let latency: [Duration] = [.milliseconds(5), .milliseconds(10), .milliseconds(20), .milliseconds(50), .milliseconds(100),
                                   .milliseconds(200), .milliseconds(500), .seconds(1), .seconds(2), .seconds(5), .seconds(10), .seconds(30)]
        factory.durationHistogramBuckets = ["qwen_time_to_first_token_seconds": latency, "qwen_inter_token_latency_seconds": latency]
        factory.valueHistogramBuckets = ["qwen_batch_size": [1, 2, 4, 8, 16, 32, 64]]
        self.factory = factory
        promptTokens = Counter(label: "qwen_prompt_tokens_total", factory: factory)
        promptChunks = Counter(label: "qwen_prompt_chunks_total", factory: factory)
        promptCacheTokens = Counter(label: "qwen_prompt_cache_tokens_total", factory: factory)
        promptCacheBytes = Gauge(label: "qwen_prompt_cache_bytes", factory: factory)
        warmedTokens = Counter(label: "qwen_prompt_cache_warmed_tokens_total", factory: factory)
        generatedTokens = Counter(label: "qwen_generated_tokens_total", factory: factory)
        timeToFirstToken = Timer(label: "qwen_time_to_first_token_seconds", factory: factory)
        interTokenLatency = Timer(label: "qwen_inter_token_latency_seconds", factory: factory)
        queueDepth = Gauge(label: "qwen_queue_depth", factory: factory)
        activeSequences = Gauge(label: "qwen_active_sequences", factory: factory)
        batchSize = Recorder(label: "qwen_batch_size", aggregate: true, factory: factory)
    }

    /// Counts a finished HTTP request by route and status.
    func request(route: String, status: Int) {
        Counter(label: "qwen_requests_total", dimensions: [("route", route), ("status", String(status))], factory: factory).increment()
    }

    /// The Prometheus text exposition.
    func exposition() -> String { registry.emitToString() }
}
