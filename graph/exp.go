package graph

import "math"

// The float32 softmax's inner loop, expSub32: e_c = exp(z_c − m) for a row
// z with maximum m, and Σ_c e_c in float64. It is the step's largest cost
// after the products (4096×1000 exps per step at T = 1000), so on amd64
// with AVX2 it runs in assembly, eight elements at a time
// (exp_amd64.s); everywhere else, and for the tail of a row, in Go.
//
// Both compute the same thing to the bit: each term by the same float32
// operations in the same order (expNonPos, with every product converted
// to float32 explicitly so that no compiler fuses it into an FMA), and the
// sum in eight float64 lanes, lane k adding the terms c ≡ k (mod 8) of the
// row's first len(z)&^7 elements in order, lane 0 then the tail, and the
// lanes combined as ((s0+s1)+(s2+s3))+((s4+s5)+(s6+s7)). TestExpSub32
// checks the assembly against expSub32Go.

// expSub32 returns Σ_c exp(z_c − m), summed in float64, and writes the
// terms to e when e is not nil (len(e) ≥ len(z)).
func expSub32(z []float32, m float32, e []float32) float64 {
	n8 := len(z) &^ 7
	if !useAVX2 || n8 == 0 {
		return expSub32Go(z, m, e)
	}
	var s [8]float64
	if e != nil {
		expSub32x8(&z[0], &e[0], n8, m, &s)
	} else {
		// no output wanted: the kernel writes to a scratch block instead
		var scratch [512]float32
		for i := 0; i < n8; i += len(scratch) {
			k := min(len(scratch), n8-i)
			expSub32x8(&z[i], &scratch[0], k, m, &s)
		}
	}
	return expTail(z, m, e, n8, &s)
}

// expSub32Go is expSub32 in Go (the definition the assembly matches).
func expSub32Go(z []float32, m float32, e []float32) float64 {
	var s [8]float64
	n8 := len(z) &^ 7
	for i := 0; i < n8; i += 8 {
		zz := z[i : i+8 : i+8]
		t0, t1, t2, t3 := expNonPos(zz[0]-m), expNonPos(zz[1]-m), expNonPos(zz[2]-m), expNonPos(zz[3]-m)
		t4, t5, t6, t7 := expNonPos(zz[4]-m), expNonPos(zz[5]-m), expNonPos(zz[6]-m), expNonPos(zz[7]-m)
		if e != nil {
			ee := e[i : i+8 : i+8]
			ee[0], ee[1], ee[2], ee[3], ee[4], ee[5], ee[6], ee[7] = t0, t1, t2, t3, t4, t5, t6, t7
		}
		s[0] += float64(t0)
		s[1] += float64(t1)
		s[2] += float64(t2)
		s[3] += float64(t3)
		s[4] += float64(t4)
		s[5] += float64(t5)
		s[6] += float64(t6)
		s[7] += float64(t7)
	}
	return expTail(z, m, e, n8, &s)
}

// expTail adds the terms from index i on to lane 0 (writing them to e when
// e is not nil) and returns the lanes' sum.
func expTail(z []float32, m float32, e []float32, i int, s *[8]float64) float64 {
	for ; i < len(z); i++ {
		t := expNonPos(z[i] - m)
		if e != nil {
			e[i] = t
		}
		s[0] += float64(t)
	}
	return ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]))
}

// expNonPos is exp32 for x ≤ 0 (or NaN), small enough to inline: the
// softmax only takes exp(z − max). Below −87.33654 it returns 0 (where
// expf would be subnormal); NaN propagates.
func expNonPos(x float32) float32 {
	const (
		log2e = 1.44269504088896341
		c1    = 0.693359375
		c2    = -2.12194440e-4
		p0    = 1.9875691500e-4
		p1    = 1.3981999507e-3
		p2    = 8.3334519073e-3
		p3    = 4.1665795894e-2
		p4    = 1.6666665459e-1
		p5    = 5.0000001201e-1
	)
	// n = round(x·log2 e) for x ≤ 0 (truncation of 0.5 − x·log2 e).
	n := -int32(0.5 - float32(x*log2e))
	f := float32(n)
	r := float32(x-float32(f*c1)) - float32(f*c2)
	p := float32(p0*r) + p1
	p = float32(p*r) + p2
	p = float32(p*r) + p3
	p = float32(p*r) + p4
	p = float32(p*r) + p5
	y := float32(float32(p*r)*r) + r + 1
	y *= math.Float32frombits(uint32(n+127) << 23)
	if x < -87.33654 {
		return 0
	}
	return y
}
