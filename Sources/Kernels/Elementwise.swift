import CKernels

// The C kernels' elementwise loops (vectorised, chosen at run time; scalar fallbacks inside), for
// the operators: Runtime calls Kernels, never CKernels.

/// y[i] = 1 / (1 + e^-x[i]) (`qk_sigmoid`).
public func sigmoid(_ x: UnsafePointer<Float>, into y: UnsafeMutablePointer<Float>, count: Int) {
    qk_sigmoid(x, y, count)
}

/// y[i] = (x[i] · sigmoid(x[i])) · u[i], the SiLU-gated MLP (`qk_silu_mul`); y may alias neither input.
public func siluMul(_ x: UnsafePointer<Float>, _ u: UnsafePointer<Float>, into y: UnsafeMutablePointer<Float>, count: Int) {
    qk_silu_mul(x, u, y, count)
}

/// dst[i] = src[i] rounded to float16 (nearest, ties to even) and widened back; src and dst may
/// be the same.
public func roundToHalf(_ src: UnsafePointer<Float>, into dst: UnsafeMutablePointer<Float>, count: Int) {
    if count == 0 || qk_round_to_half(src, dst, count) != 0 { return }
    for i in 0..<count { dst[i] = Float(Float16(src[i])) }
}

/// scores[t] = softmax(scores + mask)[t] in place (mask may be nil); NaN → 0 when `nanToZero`
/// (`qk_softmax_row`: the softmax of the fused attention).
public func maskedSoftmaxRow(_ scores: UnsafeMutablePointer<Float>, mask: UnsafePointer<Float>?, count: Int, nanToZero: Bool) {
    qk_softmax_row(scores, mask, count, nanToZero ? 1 : 0)
}

/// Scaled dot-product attention for `rows` query rows sharing keys and values, float16 or float32
/// per `kHalf` / `vHalf` (`qk_attention_group`, each row `qk_attention_row`'s floats); `scores` is
/// scratch for `rows · count` floats.
public func attentionGroup(query: UnsafePointer<Float>, queryStride: Int, rows: Int, keys: UnsafeRawPointer, kHalf: Bool,
                           values: UnsafeRawPointer, vHalf: Bool, count: Int, depth: Int, scale: Float,
                           mask: UnsafePointer<Float>?, maskStride: Int, nanToZero: Bool, scores: UnsafeMutablePointer<Float>,
                           into out: UnsafeMutablePointer<Float>, outStride: Int) {
    qk_attention_group(query, queryStride, rows, keys, kHalf ? 1 : 0, values, vHalf ? 1 : 0, count, depth, scale, mask,
                       maskStride, nanToZero ? 1 : 0, scores, out, outStride)
}

/// Exact int32 products for MatMulInteger (`qk_int_gemm`): c[i·ldc + j] = Σ a[i·lda + k] · b[j·ldb + k].
public func intGemm(m: Int, n: Int, kp: Int, a: UnsafePointer<Int16>, lda: Int, b: UnsafePointer<UInt8>, ldb: Int,
                    bSigned: Bool, c: UnsafeMutablePointer<Int32>, ldc: Int) {
    qk_int_gemm(m, n, kp, a, lda, b, ldb, bSigned ? 1 : 0, c, ldc, 0)
}

/// DynamicQuantizeLinear's range: `lo` and `hi` widened to x's values as `x < lo ? x : lo` and
/// `x >= hi ? x : hi`, NaNs skipped (`qk_min_max`).
public func widenRange(_ x: UnsafePointer<Float>, count: Int, lo: inout Float, hi: inout Float) {
    qk_min_max(x, count, &lo, &hi)
}

/// DynamicQuantizeLinear's values: y = saturate(round_half_even(x / scale) + zeroPoint), NaN to
/// the zero point (`qk_quantize_u8`).
public func quantizeUInt8(_ x: UnsafePointer<Float>, count: Int, scale: Float, zeroPoint: UInt8, into y: UnsafeMutablePointer<UInt8>) {
    qk_quantize_u8(x, count, scale, zeroPoint, y)
}

/// MatMulInteger's dot-product kernels (`qk_mmi_*`, int_dot.c: AVX-512 VNNI `vpdpbusd`, arm64
/// `udot`): B packed once in panels of 16 columns, uint8 activation rows multiplied as they are,
/// zero points and signedness applied in the epilogue; exact, the same int32 as
/// ``intGemm(m:n:kp:a:lda:b:ldb:bSigned:c:ldc:)``.
public enum IntegerDotProducts {
    /// Whether the kernel runs at the active ISA level (AVX-512 VNNI; arm64 dot product).
    public static var available: Bool { qk_mmi_available() != 0 }

    /// The shift o of the packed B (B' = B − o), to take off B's zero points too: 0 or 128 on
    /// x86 (int8 kept, uint8 shifted into int8), −128 or 0 on arm64 (int8 shifted into uint8).
    public static func bOffset(signed: Bool) -> Int32 { qk_mmi_b_offset(signed ? 1 : 0) }

    /// Bytes of a packed k × n B.
    public static func packedBytes(k: Int, n: Int) -> Int { qk_mmi_packed_bytes(k, n) }

    /// Column panels of an n-column B (16 columns each).
    public static func panels(n: Int) -> Int { (n + 15) / 16 }

    /// Packs B (k × n row-major bytes, int8 when `signed`, else uint8) into `packed`
    /// (``packedBytes(k:n:)``) as B' = B − ``bOffset(signed:)``, with the column sums of B' into
    /// `columnSums` (16 · ``panels(n:)`` values).
    public static func pack(_ b: UnsafePointer<UInt8>, k: Int, n: Int, signed: Bool, into packed: UnsafeMutablePointer<Int8>,
                            columnSums: UnsafeMutablePointer<Int32>) {
        qk_mmi_pack(b, k, n, signed ? 1 : 0, packed, columnSums)
    }

    /// Each of m uint8 rows' sum over its first k bytes.
    public static func rowSums(_ a: UnsafePointer<UInt8>, m: Int, k: Int, lda: Int, into sums: UnsafeMutablePointer<Int32>) {
        qk_u8_row_sums(a, m, k, lda, sums)
    }

    /// c[i·ldc + j] = Σ_k (a[i·lda + k] − za[i]) · (B'[k][j] − zb[j]) for the columns of panels
    /// `panels` (`qk_mmi_gemm`; `a`'s rows zero-padded to a multiple of 4 bytes, `zb` 16 a panel).
    public static func gemm(m: Int, k: Int, a: UnsafePointer<UInt8>, lda: Int, aZero: UnsafePointer<Int32>,
                            rowSums: UnsafePointer<Int32>, packed: UnsafePointer<Int8>, columnSums: UnsafePointer<Int32>,
                            bZero: UnsafePointer<Int32>, n: Int, panels: Range<Int>, c: UnsafeMutablePointer<Int32>, ldc: Int) {
        let ran = qk_mmi_gemm(m, k, a, lda, aZero, rowSums, packed, columnSums, bZero, n, panels.lowerBound, panels.upperBound, c, ldc)
        precondition(ran != 0, "IntegerDotProducts.gemm called where the kernel does not run (check `available`)")
    }
}

/// MatMulBnb4 (bitsandbytes 4-bit) GEMV over rows of B for `m` activation rows of k floats
/// (`qk_bnb4_gemv_multi`): row i's results for B's `rows` at y + i · ldy, each row's floats those
/// of its GEMV alone.
public func bnb4Gemv(_ b: UnsafePointer<UInt8>, absmax: UnsafePointer<Float>, blockSize: Int, quantType: Int32, k: Int,
                     a: UnsafePointer<Float>, m: Int = 1, rows: Range<Int>, into y: UnsafeMutablePointer<Float>, ldy: Int = 0) {
    qk_bnb4_gemv_multi(b, absmax, blockSize, quantType, k, a, k, m, rows.lowerBound, rows.upperBound, y, ldy, 0)
}

/// Rows of a MatMulBnb4 B dequantized to float32 (`qk_bnb4_dequantize`).
public func bnb4Dequantize(_ b: UnsafePointer<UInt8>, absmax: UnsafePointer<Float>, blockSize: Int, quantType: Int32, k: Int,
                           rows: Range<Int>, into dst: UnsafeMutablePointer<Float>) {
    qk_bnb4_dequantize(b, absmax, blockSize, quantType, k, rows.lowerBound, rows.upperBound, dst)
}

/// ``halfWeightGemvRows(_:weights:k:rows:into:)`` for `count` activation rows (`lda` floats
/// apart) at once, row i's results at `y + i · ldy`: each weight vector converted once for several
/// activation rows (`qk_f16_gemv_rows_multi`), each row's floats its single-row ones. False (nothing
/// written) below the SIMD level.
public func halfWeightGemvRows(_ a: UnsafePointer<Float>, lda: Int, count: Int, weights: UnsafePointer<UInt16>, k: Int,
                               rows: Range<Int>, into y: UnsafeMutablePointer<Float>, ldy: Int) -> Bool {
    qk_f16_gemv_rows_multi(a, lda, count, weights, k, rows.lowerBound, rows.upperBound, y, ldy) != 0
}

/// y[r − rows.lowerBound] = Σ a[c] · W[r, c] for float16 weight rows W [rows, k]
/// (`qk_f16_gemv_rows`, F16C or NEON), a scalar loop where the CPU has no SIMD kernel.
public func halfWeightGemvRows(_ a: UnsafePointer<Float>, weights: UnsafePointer<UInt16>, k: Int, rows: Range<Int>,
                               into y: UnsafeMutablePointer<Float>) {
    if qk_f16_gemv_rows(a, weights, k, rows.lowerBound, rows.upperBound, y) != 0 { return }
    let half = UnsafeRawPointer(weights).assumingMemoryBound(to: Float16.self)
    for (i, j) in rows.enumerated() {
        var s: Float = 0
        for c in 0..<k { s += a[c] * Float(half[j * k + c]) }
        y[i] = s
    }
}
