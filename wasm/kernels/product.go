package kernels

import "fmt"

// The choice of a weight product's form, made here once for every caller
// (the runner, the start-up self-check, the tests): which entry points of
// matmul.wgsl a product compiles, which one a step of T tokens dispatches
// and with which grid, and how a weight larger than a binding is split.

// Target is what a device offers the products.
type Target struct {
	// Workgroups: a real GPU, where neighbouring invocations must read
	// neighbouring memory (the workgroup, few-tokens and tiled forms); a
	// CPU adapter (SwiftShader, lavapipe: IsFallbackAdapter) runs one
	// row per invocation about three times faster.
	Workgroups bool
	// Subgroups: the workgroup forms reduce with subgroupAdd
	// (SubgroupsFit).
	Subgroups bool
	// MaxPerDim is maxComputeWorkgroupsPerDimension (0: 65535).
	MaxPerDim int
	// StageTokens: the batched form's tokens of x staged at once
	// (StageTokensFor maxComputeWorkgroupStorageSize; 0: the minimum's).
	StageTokens int
	// TransposedRows: products of at least this many output rows take
	// the transposed few-tokens form (main_wgt) for 2 to MatMulBatchMax
	// tokens, where it can run (subgroups, at least TransposedMinStage
	// staged tokens); 0: never.
	TransposedRows int
}

// Form is one of a product's entry points.
type Form int

const (
	FormRow        Form = iota // main_row: one invocation per row (CPU adapters)
	FormWG                     // main_wg: 8 rows per workgroup, one token
	FormBatch                  // main_wgb: 8 rows per workgroup, 2 to MatMulBatchMax tokens
	FormTile                   // main_tile: 64×64 tiles (prefill)
	FormTransposed             // main_wgt: 32 rows per workgroup, a row per lane, 2 to MatMulBatchMax tokens
)

func (f Form) String() string {
	return [...]string{"row", "wg", "wgb", "tile", "wgt"}[f]
}

// Part is rows Row0 … Row0+Rows−1 of a weight, bound as its own buffer.
type Part struct{ Row0, Rows int }

// Parts splits a weight of rows rows of rowBytes bytes each into parts of
// at most maxBinding bytes (at least one row each).
func Parts(rows, rowBytes int, maxBinding int64) []Part {
	per := max(1, int(maxBinding/int64(max(rowBytes, 1))))
	var out []Part
	for r0 := 0; r0 < rows; r0 += per {
		out = append(out, Part{Row0: r0, Rows: min(per, rows-r0)})
	}
	return out
}

// ProductPlan is how one product runs on a Target: the kernels to make
// pipelines of (Forms says which form each is) and, per step, which form
// and grid.
type ProductPlan struct {
	Name    string // the product's kernel, for profiles: matmul_<type>+<fusions>
	Kernels []Kernel
	Forms   []Form
	target  Target
	gated   bool
}

// PlanProduct plans the product of a typ weight split into parts with
// fusions f (f.Subgroups is set here from t). A weight in several parts
// cannot be gated or biased (each part is its own product).
func PlanProduct(typ string, f Fusion, parts []Part, t Target) (ProductPlan, error) {
	if len(parts) > 1 && (f.Gated || f.Bias) {
		return ProductPlan{}, fmt.Errorf("kernels: a %s weight in %d parts cannot have a gated or biased product", typ, len(parts))
	}
	p := ProductPlan{target: t, gated: f.Gated}
	if p.target.MaxPerDim <= 0 {
		p.target.MaxPerDim = 65535
	}
	f.Subgroups = false
	f.StageTokens = t.StageTokens
	k, err := MatMul(typ, f)
	if err != nil {
		return p, err
	}
	p.Name = k.Name
	if !t.Workgroups {
		p.Kernels, p.Forms = []Kernel{k}, []Form{FormRow}
		return p, nil
	}
	tile := TileForm(k) // the tiles never use subgroups
	if t.Subgroups {
		f.Subgroups = true
		if k, err = MatMul(typ, f); err != nil {
			return p, err
		}
		p.Name = k.Name
	}
	p.Kernels = []Kernel{WorkgroupForm(k), BatchForm(k), tile}
	p.Forms = []Form{FormWG, FormBatch, FormTile}
	if p.transposed() {
		p.Kernels, p.Forms = append(p.Kernels, TransposedForm(k)), append(p.Forms, FormTransposed)
	}
	return p, nil
}

// transposed says whether the plan's target runs the transposed form at
// all: it reduces with subgroups (as main_wg does there) and needs room
// for TransposedMinStage staged tokens.
func (p ProductPlan) transposed() bool {
	t := p.target
	return t.Workgroups && t.Subgroups && t.TransposedRows > 0 && t.StageTokens >= TransposedMinStage
}

// Choose says which of p.Kernels a step of T tokens runs on a part of
// part.Rows weight rows, and its grid. Single tokens take the workgroup
// form, up to MatMulBatchMax tokens (batched decode, short prompts) the
// few-tokens form (the transposed one for products of at least
// Target.TransposedRows rows, where it runs), larger batches the tiles (each weight read once per 64
// tokens); on CPU adapters everything takes the row form.
func (p ProductPlan) Choose(part Part, T int) (k int, x, y, z uint32) {
	rows := part.Rows
	if p.gated {
		rows /= 2
	}
	switch {
	case !p.target.Workgroups:
		return 0, uint32((rows + 63) / 64), uint32(T), 1
	case T == 1:
		x, y, z = MatMulWorkgroups(rows, 1, p.target.MaxPerDim)
		return 0, x, y, z
	case T <= MatMulBatchMax && p.transposed() && rows >= p.target.TransposedRows:
		x, y, z = MatMulTransposedWorkgroups(rows, p.gated, p.target.MaxPerDim)
		return 3, x, y, z
	case T <= MatMulBatchMax:
		x, y, _ = MatMulWorkgroups(rows, 1, p.target.MaxPerDim)
		return 1, x, y, 1
	default:
		x, y, z = MatMulTiles(rows, T, p.gated)
		return 2, x, y, z
	}
}

// AttentionWorkgroup is the attention kernels' workgroup size on t: 256
// invocations on real GPUs, 64 on CPU adapters (small workgroups win there).
func AttentionWorkgroup(t Target) int {
	if t.Workgroups {
		return 256
	}
	return 64
}

// ArgmaxSplits says whether the argmax over vocab logits runs split
// (ArgmaxPartial, then ArgmaxFinal) on t: large vocabularies on real GPUs,
// where one workgroup reading 128k logits takes ~85 µs on an H100.
func ArgmaxSplits(t Target, vocab int) bool { return t.Workgroups && vocab > 2*ArgmaxSlice }
