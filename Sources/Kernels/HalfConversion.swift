// float16 <-> float32 conversion of whole buffers. With the CPU named at build time (F16C),
// each SIMD16 conversion is one vcvtph2ps / vcvtps2ph; otherwise the compiler's software
// conversion is used, which is exact but slower. Rounding: float32 -> float16 rounds to nearest
// even, subnormals and infinities included.

/// `dst[i] = Float(src[i])` for `count` elements.
@inlinable
public func convertHalfToFloat(_ src: UnsafePointer<Float16>, _ dst: UnsafeMutablePointer<Float>, _ count: Int) {
    var i = 0
    let s = UnsafeRawPointer(src), d = UnsafeMutableRawPointer(dst)
    while i + 16 <= count {
        let h = s.loadUnaligned(fromByteOffset: i * 2, as: SIMD16<Float16>.self)
        d.storeBytes(of: SIMD16<Float>(h), toByteOffset: i * 4, as: SIMD16<Float>.self)
        i += 16
    }
    while i < count {
        dst[i] = Float(src[i])
        i += 1
    }
}

/// `dst[i] = Float16(src[i])` (round to nearest even) for `count` elements.
@inlinable
public func convertFloatToHalf(_ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<Float16>, _ count: Int) {
    var i = 0
    let s = UnsafeRawPointer(src), d = UnsafeMutableRawPointer(dst)
    while i + 16 <= count {
        let f = s.loadUnaligned(fromByteOffset: i * 4, as: SIMD16<Float>.self)
        d.storeBytes(of: SIMD16<Float16>(f), toByteOffset: i * 2, as: SIMD16<Float16>.self)
        i += 16
    }
    while i < count {
        dst[i] = Float16(src[i])
        i += 1
    }
}

/// `body(range)` over `0..<count`, split over the kernel pool's threads when the count is
/// large (the LM head's logits of a batched step: 8 × 151,936 values; a prompt's residual adds):
/// for per-value work (conversions, arithmetic) a node runs on a whole tensor from the session's
/// thread, not inside a parallel loop. Each value is computed alone, so the split changes no result.
public func elementwiseInParallel(_ count: Int, _ body: (Range<Int>) -> Void) {
    if count < 1 << 16 { body(0..<count) } else { parallelFor(count, minChunk: 1 << 15, granularity: 16, body) }
}
