package dense

import "math/bits"

// Permutation returns the visiting order of a shuffled split of n examples:
// a permutation of 0…n−1 that depends only on (n, seed), identical on every
// platform and Go version, so any implementation (a plugin in another
// language included) can reproduce it:
//
//	state ← seed; next() = SplitMix64(state)   (Steele, Lea & Flood 2014)
//	p ← [0, 1, …, n−1]
//	for i = n−1 down to 1:
//	    j ← ⌊next()·(i+1) / 2⁶⁴⌋                 (high word of the 128-bit product)
//	    swap p[i], p[j]
//
// (Fisher–Yates with Lemire's multiply-shift range reduction; its bias is
// below (i+1)/2⁶⁴, irrelevant for any split size.)
func Permutation(n int, seed uint64) []int32 {
	p := make([]int32, n)
	for i := range p {
		p[i] = int32(i)
	}
	state := seed
	for i := n - 1; i > 0; i-- {
		state += 0x9e3779b97f4a7c15
		z := state
		z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
		z = (z ^ (z >> 27)) * 0x94d049bb133111eb
		z ^= z >> 31
		hi, _ := bits.Mul64(z, uint64(i+1))
		p[i], p[hi] = p[hi], p[i]
	}
	return p
}
