package safetensors

import "math"

// DType is a safetensors element type, spelled as in the file header ("F32").
type DType string

// The element types of the format. Each is stored little-endian.
const (
	BOOL   DType = "BOOL"    // 1 byte, 0 or 1
	F4     DType = "F4"      // 4-bit float (E2M1), two per byte
	F6E2M3 DType = "F6_E2M3" // 6-bit float, packed
	F6E3M2 DType = "F6_E3M2" // 6-bit float, packed
	U8     DType = "U8"      // unsigned 8-bit integer
	I8     DType = "I8"      // signed 8-bit integer
	F8E5M2 DType = "F8_E5M2" // 8-bit float, 5 exponent bits
	F8E4M3 DType = "F8_E4M3" // 8-bit float, 4 exponent bits
	F8E8M0 DType = "F8_E8M0" // 8-bit power-of-two scale
	I16    DType = "I16"     // signed 16-bit integer
	U16    DType = "U16"     // unsigned 16-bit integer
	F16    DType = "F16"     // IEEE 754 half precision
	BF16   DType = "BF16"    // bfloat16: the top 16 bits of a float32
	I32    DType = "I32"     // signed 32-bit integer
	U32    DType = "U32"     // unsigned 32-bit integer
	F32    DType = "F32"     // IEEE 754 single precision
	C64    DType = "C64"     // complex64: two float32 (real, imaginary)
	F64    DType = "F64"     // IEEE 754 double precision
	I64    DType = "I64"     // signed 64-bit integer
	U64    DType = "U64"     // unsigned 64-bit integer
)

// dtypeOrder lists the dtypes in the reference implementation's order of
// increasing alignment; writers place tensors of later dtypes first.
var dtypeOrder = []DType{BOOL, F4, F6E2M3, F6E3M2, U8, I8, F8E5M2, F8E4M3, F8E8M0,
	I16, U16, F16, BF16, I32, U32, F32, C64, F64, I64, U64}

var dtypeBits = map[DType]int{
	BOOL: 8, F4: 4, F6E2M3: 6, F6E3M2: 6, U8: 8, I8: 8, F8E5M2: 8, F8E4M3: 8, F8E8M0: 8,
	I16: 16, U16: 16, F16: 16, BF16: 16, I32: 32, U32: 32, F32: 32, C64: 64, F64: 64, I64: 64, U64: 64,
}

var dtypeRank = func() map[DType]int {
	rank := make(map[DType]int, len(dtypeOrder))
	for i, d := range dtypeOrder {
		rank[d] = i
	}
	return rank
}()

// Known reports whether d is a dtype of the format.
func (d DType) Known() bool { _, ok := dtypeBits[d]; return ok }

// Bits is the size of one element in bits (0 for an unknown dtype).
func (d DType) Bits() int { return dtypeBits[d] }

// IsFloat reports whether values of d can be read as float32/float64
// ([Reader.Float32s], [Reader.Float64s]): F64, F32, F16 and BF16.
func (d DType) IsFloat() bool { return d == F64 || d == F32 || d == F16 || d == BF16 }

// String returns the header spelling of d.
func (d DType) String() string { return string(d) }

// byteLen is the storage size of elements values of d, or ok=false when the
// packed bits do not fill whole bytes or the size overflows int64.
func (d DType) byteLen(elements int64) (n int64, ok bool) {
	bits := int64(d.Bits())
	if bits == 0 || elements < 0 || elements > math.MaxInt64/bits {
		return 0, false
	}
	total := elements * bits
	if total%8 != 0 {
		return 0, false
	}
	return total / 8, true
}

// HalfToFloat32 converts IEEE 754 half-precision bits (F16) to float32
// exactly: every half value, subnormals, infinities and NaN payloads
// included, is representable in float32.
func HalfToFloat32(h uint16) float32 {
	sign := uint32(h>>15) << 31
	exp := uint32(h>>10) & 0x1f
	mant := uint32(h) & 0x3ff
	switch {
	case exp == 0x1f: // Inf or NaN: keep the payload in the top mantissa bits.
		return math.Float32frombits(sign | 0x7f800000 | mant<<13)
	case exp != 0: // normal: rebias the exponent from 15 to 127.
		return math.Float32frombits(sign | (exp+127-15)<<23 | mant<<13)
	case mant == 0: // signed zero
		return math.Float32frombits(sign)
	}
	// Subnormal half: value = mant·2⁻²⁴, normal in float32. Shift the
	// mantissa until its leading one reaches the implicit-bit position.
	e := uint32(127 - 15 + 1)
	for mant&0x400 == 0 {
		mant <<= 1
		e--
	}
	return math.Float32frombits(sign | e<<23 | (mant&0x3ff)<<13)
}

// BFloat16ToFloat32 converts bfloat16 bits (BF16) to float32 exactly: a
// bfloat16 is the upper half of a float32.
func BFloat16ToFloat32(b uint16) float32 { return math.Float32frombits(uint32(b) << 16) }
