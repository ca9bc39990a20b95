//go:build amd64

package cpu

import (
	"math"
	"unsafe"

	"github.com/webinfer/webinfer/wasm/gguf"
	"golang.org/x/sys/cpu"
)

// Q8_0 and Q4_0 products in AVX-512 VNNI assembly (dot_vnni_amd64.s), for
// every amd64 build, registered when the CPU has AVX-512 F, BW, VL and
// VNNI and timed against the other kernels like all of them.
//
// Why: one VPDPBUSD multiplies 64 unsigned bytes by 64 signed ones and
// adds them in fours into int32 lanes, where AVX2 needs a sign, an
// absolute value and two multiplies for 32. Its first operand must be
// unsigned, so the weights are made unsigned (Q8_0 quants plus 128, Q4_0
// nibbles as stored, 0…15) and the sum corrected by K·Σx (K = 128 or 8),
// which the activations carry precomputed: integer sums stay exact.
//
// The two- and four-token kernels are the batched product of prefill and
// of several sequences per step: each weight block is loaded and widened
// once for all the tokens. They compute every (row, token) exactly as the
// one-token kernel does, so a token's results do not depend on its batch.

//go:noescape
func q8_0VNNI1(a *vnniArgs)

//go:noescape
func q8_0VNNI4(a *vnniArgs)

//go:noescape
func q8_0VNNI2(a *vnniArgs)

//go:noescape
func q4_0VNNI1(a *vnniArgs)

//go:noescape
func q4_0VNNI2(a *vnniArgs)

//go:noescape
func q4_0VNNI4(a *vnniArgs)

// vnniArgs is what the assembly reads (offsets A_* in the .s file): rows
// [r, rows) of the weight at w, r and rows multiples of four, for one or
// four tokens' packed activations x, into y (each at row 0).
type vnniArgs struct {
	w        *byte
	rb, rows int
	nb       int
	r        int
	x        [4]*uint32
	y        [4]*float32
}

func init() {
	x := cpu.X86
	if !x.HasAVX512F || !x.HasAVX512BW || !x.HasAVX512VL || !x.HasAVX512VNNI || !x.HasF16C {
		return
	}
	vectorKernels = append(vectorKernels,
		vnniKernel(gguf.TypeQ8_0, 34, q8_0VNNI1, q8_0VNNI2, q8_0VNNI4),
		vnniKernel(gguf.TypeQ4_0, 18, q4_0VNNI1, q4_0VNNI2, q4_0VNNI4),
	)
}

// vnniK is how much more than the signed weights of type t the kernels'
// unsigned ones are.
func vnniK(t gguf.Type) int32 {
	if t == gguf.TypeQ4_0 {
		return 8
	}
	return 128
}

// vnniKernel registers the one-, two- and four-token assembly for type t,
// whose blocks are bb bytes.
func vnniKernel(t gguf.Type, bb int, one, two, four func(*vnniArgs)) vectorKernel {
	k := vnniK(t)
	return vectorKernel{
		typ:     t,
		isa:     "asm-avx512vnni",
		prepare: func(a *Activations) { a.ensureVNNI(k) },
		rows: func(y []float32, w Weight, lo, hi int, a *Activations) {
			vnniRun(one, bb, w, lo, hi, [4][]float32{y}, [4]*Activations{a}, 1)
		},
		tile: func(ys [4][]float32, w Weight, lo, hi int, as [4]*Activations, n int) {
			if n == 2 {
				vnniRun(two, bb, w, lo, hi, ys, as, 2)
			} else {
				vnniRun(four, bb, w, lo, hi, ys, as, 4)
			}
		},
	}
}

// vnniRun runs kernel k over rows [lo, hi) for nt tokens: the rows in
// whole groups of four in place, the last one to three through a
// zero-padded copy of four rows (results written back for the real ones).
func vnniRun(k func(*vnniArgs), bb int, w Weight, lo, hi int, ys [4][]float32, as [4]*Activations, nt int) {
	if hi <= lo {
		return
	}
	nb := w.Cols / 32
	if nb == 0 {
		for t := range nt {
			clear(ys[t][lo:hi])
		}
		return
	}
	rb := bb * nb
	var args vnniArgs
	for t := range nt {
		_ = ys[t][hi-1]
		if len(as[t].vn) < vnniWords(nb) || as[t].vnK != vnniK(w.Type) {
			panic("cpu: VNNI kernel without its activation form")
		}
		args.x[t] = &as[t].vn[0]
	}
	whole := lo + (hi-lo)&^3
	if whole > lo {
		_ = w.Data[whole*rb-1]
		args.w, args.rb, args.nb = &w.Data[lo*rb], rb, nb
		args.r, args.rows = 0, whole-lo
		for t := range nt {
			args.y[t] = &ys[t][lo]
		}
		k(&args)
	}
	if whole == hi {
		return
	}
	var pad [4 * 4]float32
	rowsCopy := make([]byte, 4*rb)
	copy(rowsCopy, w.Data[whole*rb:hi*rb])
	args.w, args.rb, args.nb = &rowsCopy[0], rb, nb
	args.r, args.rows = 0, 4
	for t := range nt {
		args.y[t] = &pad[4*t]
	}
	k(&args)
	for t := range nt {
		copy(ys[t][whole:hi], pad[4*t:4*t+hi-whole])
	}
}

// vnniWords is the packed form's length in 32-bit words for nb blocks:
// 48 words per pair of blocks (vnniStep).
func vnniWords(nb int) int { return (nb + 1) / 2 * 48 }

// ensureVNNI packs the Q8_0 form for the VNNI kernels, per pair of blocks
// (a last odd block paired with zeros): the 64 quants, the 16 lanes'
// activation scales (each block's d8 eight times), and the 16 lanes'
// corrections, −k times the sum of each four consecutive quants, which
// the kernel's unsigned weights (k more than the signed ones) need.
func (a *Activations) ensureVNNI(k int32) {
	a.ensureQ8()
	if a.have&formVNNI != 0 && a.vnK == k {
		return
	}
	a.have |= formVNNI
	a.vnK = k
	nb := len(a.X) / 32
	n := vnniWords(nb)
	if cap(a.vn) < n {
		a.vn = make([]uint32, n)
	}
	a.vn = a.vn[:n]
	clear(a.vn)
	for b := range nb {
		step := a.vn[b/2*48 : b/2*48+48]
		half := b % 2
		q := a.q8[32*b : 32*b+32]
		copy(unsafe.Slice((*int8)(unsafe.Pointer(&step[0])), 64)[32*half:], q)
		for i := range 8 {
			step[16+8*half+i] = math.Float32bits(a.d8[b])
			s := int32(q[4*i]) + int32(q[4*i+1]) + int32(q[4*i+2]) + int32(q[4*i+3])
			step[32+8*half+i] = uint32(-k * s)
		}
	}
}
