//go:build goexperiment.simd && amd64

package cpu

import "simd/archsimd"

// AVX2 versions of attention's loops (attend.go), under the rules of
// dot_simd_amd64.go: no scalar float code inside, the per-position weights
// loaded eight at a time and taken a lane at a time with a permute.

func init() {
	if archsimd.X86.AVX2() && archsimd.X86.FMA() {
		vectorAttend = &attendKernels{"avx2", scoresAVX2, addVAVX2}
	}
}

// scoresAVX2 dots q with eight cached keys at a time and stores their
// scores as one vector. Head sizes that are not a multiple of 16 take the
// portable loop.
//
//go:norace
func scoresAVX2(scores, q, K []float32, stride int) {
	d, n := len(q), len(scores)
	if d%16 != 0 || n == 0 {
		scoresGo(scores, q, K, stride)
		return
	}
	_ = K[(n-1)*stride+d-1]
	var sums rowSums
	for p0 := 0; p0 < n; p0 += 8 {
		for i := 0; i < min(8, n-p0); i++ {
			k := K[(p0+i)*stride : (p0+i)*stride+d]
			var a0, a1 archsimd.Float32x8
			for e := 0; e+16 <= d; e += 16 {
				a0 = archsimd.LoadFloat32x8Slice(q[e:]).MulAdd(archsimd.LoadFloat32x8Slice(k[e:]), a0)
				a1 = archsimd.LoadFloat32x8Slice(q[e+8:]).MulAdd(archsimd.LoadFloat32x8Slice(k[e+8:]), a1)
			}
			sums.set(i, a0.Add(a1))
		}
		sums.store(scores[p0:min(p0+8, n)])
	}
	archsimd.ClearAVXUpperBits()
}

// addVAVX2 adds eight weighted value rows at a time into out, eight
// elements a step; each element's sum takes the positions in order, as the
// portable loop does.
//
//go:norace
func addVAVX2(out, weights, V []float32, stride int) {
	d, n := len(out), len(weights)
	if d%8 != 0 || n == 0 {
		addVGo(out, weights, V, stride)
		return
	}
	_ = V[(n-1)*stride+d-1]
	p0 := 0
	for ; p0+8 <= n; p0 += 8 {
		wv := archsimd.LoadFloat32x8Slice(weights[p0:])
		b0, b1, b2, b3 := lane(wv, 0), lane(wv, 1), lane(wv, 2), lane(wv, 3)
		b4, b5, b6, b7 := lane(wv, 4), lane(wv, 5), lane(wv, 6), lane(wv, 7)
		v := V[p0*stride : (p0+7)*stride+d]
		for e := 0; e+8 <= d; e += 8 {
			acc := archsimd.LoadFloat32x8Slice(out[e:])
			acc = b0.MulAdd(archsimd.LoadFloat32x8Slice(v[e:]), acc)
			acc = b1.MulAdd(archsimd.LoadFloat32x8Slice(v[stride+e:]), acc)
			acc = b2.MulAdd(archsimd.LoadFloat32x8Slice(v[2*stride+e:]), acc)
			acc = b3.MulAdd(archsimd.LoadFloat32x8Slice(v[3*stride+e:]), acc)
			acc = b4.MulAdd(archsimd.LoadFloat32x8Slice(v[4*stride+e:]), acc)
			acc = b5.MulAdd(archsimd.LoadFloat32x8Slice(v[5*stride+e:]), acc)
			acc = b6.MulAdd(archsimd.LoadFloat32x8Slice(v[6*stride+e:]), acc)
			acc = b7.MulAdd(archsimd.LoadFloat32x8Slice(v[7*stride+e:]), acc)
			acc.StoreSlice(out[e:])
		}
	}
	if p0 < n {
		wv := archsimd.LoadFloat32x8SlicePart(weights[p0:])
		for e := 0; e+8 <= d; e += 8 {
			acc := archsimd.LoadFloat32x8Slice(out[e:])
			for j := 0; j < n-p0; j++ {
				acc = lane(wv, j).MulAdd(archsimd.LoadFloat32x8Slice(V[(p0+j)*stride+e:]), acc)
			}
			acc.StoreSlice(out[e:])
		}
	}
	archsimd.ClearAVXUpperBits()
}
