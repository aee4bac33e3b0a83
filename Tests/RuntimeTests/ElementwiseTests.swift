import Foundation
import Testing
@testable import Runtime

@Suite struct ElementwiseTests {
    @Test func addBroadcastsMultidirectionally() throws {
        // [2,1] + [1,3] -> [2,3]
        let a = Tensor([1, 2], shape: [2, 1]), b = Tensor([10, 20, 30], shape: [1, 3])
        let y = try runOp("Add", [a, b])[0]
        #expect(y.shape == [2, 3])
        #expect(y.floats() == [11, 21, 31, 12, 22, 32])
        // [2,3] * [3] and scalar / [2,3]
        let c = Tensor([1, 2, 3, 4, 5, 6], shape: [2, 3])
        #expect(try runOp("Mul", [c, Tensor([1, 0, -1], shape: [3])])[0].floats() == [1, 0, -3, 4, 0, -6])
        #expect(try runOp("Div", [Tensor.scalar(Float(12)), c])[0].floats() == [12, 6, 4, 3, 2.4, 2])
        #expect(try runOp("Sub", [c, Tensor.scalar(Float(1))])[0].floats() == [0, 1, 2, 3, 4, 5])
    }

    @Test func incompatibleShapesAreANodeError() throws {
        #expect(throws: RuntimeError.self) {
            try runOp("Add", [Tensor([1, 2, 3], shape: [3]), Tensor([1, 2], shape: [2])])
        }
    }

    @Test func integerArithmeticTruncatesAndRefusesDivisionByZero() throws {
        let a = Tensor(int64s: [Int64(7), -7], shape: [2]), b = Tensor(int64s: [Int64(2), 2], shape: [2])
        #expect(try runOp("Div", [a, b])[0].int64s() == [3, -3])
        #expect(throws: RuntimeError.self) { try runOp("Div", [a, Tensor(int64s: [Int64(0), 1], shape: [2])]) }
    }

    @Test func float16IsComputedInFloat32AndRoundedOnce() throws {
        // 1 + 2^-11 is exactly between two float16 values: ties-to-even gives 1.
        // 1 + 3·2^-11 is between 1+2^-10 and 1+2^-9: ties-to-even gives 1 + 2^-9.
        let a = Tensor(float16s: [Float16(1), Float16(1)], shape: [2])
        let b = Tensor(float16s: [Float16(Float(0x1p-11)), Float16(Float(0x3p-11))], shape: [2])
        let y = try runOp("Add", [a, b])[0]
        #expect(y.dtype == .float16)
        #expect(y.floats() == [1, 1 + Float(0x1p-9)])
        // Subnormals survive: the smallest positive float16 subnormal, doubled.
        let tiny = Float16(bitPattern: 1)
        let z = try runOp("Mul", [Tensor(float16s: [tiny], shape: [1]), Tensor(float16s: [Float16(2)], shape: [1])])[0]
        #expect(z.pointer(as: Float16.self)[0].bitPattern == 2)
        // The RMSNorm epsilon of the real export: float16 subnormal 1.013e-6 stays that value.
        let eps = Float16(Float(1e-6))
        #expect(eps.isSubnormal)
        let e = try runOp("Add", [Tensor(float16s: [Float16(0)], shape: [1]), Tensor(float16s: [eps], shape: [1])])[0]
        #expect(e.pointer(as: Float16.self)[0] == eps)
    }

    @Test func powUsesProductsForSmallIntegerExponents() throws {
        let x = Tensor([1.1, -3, 0.5], shape: [3])
        let y = try runOp("Pow", [x, Tensor.scalar(Float(2))])[0].floats()
        #expect(y == [Float(1.1) * Float(1.1), 9, 0.25])
        let h = try runOp("Pow", [Tensor(float16s: [Float16(3)], shape: [1]), Tensor(float16s: [Float16(2)], shape: [1])])[0]
        #expect(h.floats() == [9])
    }

    @Test func comparisonsAndLogic() throws {
        let a = Tensor([1, 2, 3], shape: [3]), b = Tensor.scalar(Float(2))
        #expect(try runOp("Less", [a, b])[0].bools() == [true, false, false])
        #expect(try runOp("LessOrEqual", [a, b])[0].bools() == [true, true, false])
        #expect(try runOp("Greater", [a, b])[0].bools() == [false, false, true])
        #expect(try runOp("Equal", [Tensor(int64s: [Int64(1), 5], shape: [2]), Tensor(int64s: [Int64(1), 4], shape: [2])])[0].bools() == [true, false])
        let t = Tensor(bools: [true, true, false, false], shape: [4]), f = Tensor(bools: [true, false, true, false], shape: [4])
        #expect(try runOp("And", [t, f])[0].bools() == [true, false, false, false])
        #expect(try runOp("Or", [t, f])[0].bools() == [true, true, true, false])
        #expect(try runOp("Not", [t])[0].bools() == [false, false, true, true])
        #expect(try runOp("IsNaN", [Tensor([Float.nan, 1, -.infinity], shape: [3])])[0].bools() == [true, false, false])
    }

    @Test func unaryMath() throws {
        let x = Tensor([0, 1, -2, 4], shape: [4])
        #expect(try runOp("Neg", [x])[0].floats() == [0, -1, 2, -4])
        #expect(try runOp("Sqrt", [Tensor([4, 9], shape: [2])])[0].floats() == [2, 3])
        #expect(try runOp("Reciprocal", [Tensor([4, -0.5], shape: [2])])[0].floats() == [0.25, -2])
        let s = try runOp("Sigmoid", [Tensor([0, 2, -2], shape: [3])])[0].floats()
        #expect(abs(s[0] - 0.5) < 1e-7)
        #expect(abs(s[1] - 0.880797078) < 1e-6)
        #expect(abs(s[2] - 0.119202922) < 1e-6)
        let c = try runOp("Cos", [Tensor([0, Float.pi], shape: [2])])[0].floats()
        #expect(abs(c[0] - 1) < 1e-7 && abs(c[1] + 1) < 1e-6)
        let e = try runOp("Erf", [Tensor([0, 1], shape: [2])])[0].floats()
        #expect(e[0] == 0 && abs(e[1] - 0.842700793) < 1e-6)
        #expect(try runOp("Neg", [Tensor(int64s: [Int64(3)], shape: [1])])[0].int64s() == [-3])
    }

    @Test func whereBroadcastsAllThreeOperands() throws {
        let cond = Tensor(bools: [true, false], shape: [2, 1])
        let x = Tensor([1, 2, 3], shape: [3])
        let y = Tensor.scalar(Float(-1))
        let r = try runOp("Where", [cond, x, y])[0]
        #expect(r.shape == [2, 3])
        #expect(r.floats() == [1, 2, 3, -1, -1, -1])
        // float16 -inf mask constants, as the exports use.
        let m = try runOp("Where", [Tensor(bools: [true, false], shape: [2]), Tensor(float16s: [Float16(0)], shape: [1]),
                                   Tensor(float16s: [-Float16.infinity], shape: [1])])[0]
        #expect(m.floats() == [0, -.infinity])
    }

    @Test func castFollowsONNXSemantics() throws {
        let x = Tensor([1.9, -1.9, 2.5, 0], shape: [4])
        #expect(try runOp("Cast", [x], attributes: attrs(attr("to", int: 7)))[0].int64s() == [1, -1, 2, 0])
        #expect(try runOp("Cast", [x], attributes: attrs(attr("to", int: 9)))[0].bools() == [true, true, true, false])
        // float32 -> float16: 65520 overflows to +inf, 1+2^-11 ties to 1, values round to nearest even.
        let h = try runOp("Cast", [Tensor([65520, 1 + Float(0x1p-11), 0.1], shape: [3])], attributes: attrs(attr("to", int: 10)))[0]
        #expect(h.dtype == .float16)
        let hv = h.floats()
        #expect(hv[0] == .infinity && hv[1] == 1 && hv[2] == Float(Float16(0.1)))
        let back = try runOp("Cast", [h], attributes: attrs(attr("to", int: 1)))[0]
        #expect(back.dtype == .float && back.floats() == hv)
        let i = try runOp("Cast", [Tensor(int64s: [Int64(3), -2], shape: [2])], attributes: attrs(attr("to", int: 1)))[0]
        #expect(i.floats() == [3, -2])
    }

    /// A `to` that is no type code (beyond Int32, negative, unknown, or a type without storage)
    /// is a typed error naming the node when the session is planned, not a trap.
    @Test(arguments: [1 << 40, -1, 99, 0])
    func castToWhatIsNoTypeIsAnError(to: Int) throws {
        #expect(throws: RuntimeError.self) {
            try runOp("Cast", [Tensor([1], shape: [1])], attributes: attrs(attr("to", int: to)))
        }
    }
}
