package safetensors

import (
	"math"
	"testing"
)

// Every one of the 65536 half-precision bit patterns converts to the value
// the IEEE 754 definition gives: (−1)^s · 2^(e−15) · (1 + m/1024) for normal
// numbers, (−1)^s · 2^−14 · m/1024 for subnormals, ±Inf, and NaN.
func TestHalfToFloat32Exhaustive(t *testing.T) {
	for h := range 1 << 16 {
		s, e, m := h>>15, (h>>10)&0x1f, h&0x3ff
		sign := 1.0
		if s == 1 {
			sign = -1
		}
		var want float64
		switch {
		case e == 0x1f && m == 0:
			want = math.Inf(int(sign))
		case e == 0x1f:
			want = math.NaN()
		case e == 0:
			want = sign * math.Ldexp(float64(m)/1024, -14)
		default:
			want = sign * math.Ldexp(1+float64(m)/1024, e-15)
		}
		got := HalfToFloat32(uint16(h))
		if math.IsNaN(want) {
			if !math.IsNaN(float64(got)) {
				t.Fatalf("half %#04x: got %v, want NaN", h, got)
			}
			continue
		}
		if float64(got) != want || math.Signbit(float64(got)) != (s == 1) {
			t.Fatalf("half %#04x: got %v, want %v", h, got, want)
		}
	}
}

func TestBFloat16ToFloat32(t *testing.T) {
	for b := range 1 << 16 {
		got := BFloat16ToFloat32(uint16(b))
		// bfloat16 is float32 with the low 16 mantissa bits zero.
		if bits := math.Float32bits(got); bits != uint32(b)<<16 {
			t.Fatalf("bf16 %#04x: bits %#08x", b, bits)
		}
	}
	if BFloat16ToFloat32(0x4049) != float32(3.140625) {
		t.Fatal("bf16 0x4049 is 3.140625")
	}
}

func TestDTypeSizes(t *testing.T) {
	for d, wantBytes := range map[DType]int64{F64: 24, F32: 12, F16: 6, BF16: 6, I64: 24, U8: 3, BOOL: 3, C64: 24} {
		if n, ok := d.byteLen(3); !ok || n != wantBytes {
			t.Errorf("%s: 3 elements take %d bytes, want %d", d, n, wantBytes)
		}
	}
	if _, ok := F4.byteLen(3); ok {
		t.Error("3 F4 values do not fill whole bytes")
	}
	if n, ok := F6E2M3.byteLen(4); !ok || n != 3 {
		t.Errorf("4 F6 values take %d bytes, want 3", n)
	}
	if DType("F99").Known() || !F32.IsFloat() || I32.IsFloat() {
		t.Error("Known/IsFloat wrong")
	}
}
