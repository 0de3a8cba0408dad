// Package analysis measures what fine-tuning changed in a layer and what the
// model forgot: the stability–plasticity decompositions of DESIGN.md §2 and the
// forgetting metrics, as plain float64 functions over gonum matrices and plain
// slices. It imports no GoMLX; weights stored as float32 are read through
// Float32Matrix and analysed in float64 without a float64 copy of the layer.
//
// # Weight space
//
// With the pretrained layer's (thin or truncated) SVD  W₀ ≈ U·diag(S)·Vᵀ
// (U m×q, S q descending, V n×q, q ≤ min(m,n)) and the merged fine-tuned W₁ (m×n),
//
//	M  = Uᵀ·W₁·V                  (q×q, W₁ in the pretrained singular basis)
//	ΔM = M − diag(S)
//
// The diagonal ΔM_ii is the change of strength along pretrained component i
// (stability of existing directions); the off-diagonal part mixes components
// (new directions, plasticity). When W₀ itself is supplied, WeightSpace
// computes ΔM = Uᵀ·(W₁ − W₀)·V, which equals M − diag(S) for an exact SVD and
// is accurate relative to ‖W₁ − W₀‖ rather than ‖W₀‖ (it also excludes the
// SVD's own residual UᵀW₀V − diag(S), which VerifyBasis reports).
//
// # Feature space
//
// For probe inputs X (N×n) of the layer on the old task, Y₀ = X·W₀ᵀ and
// Y₁ = X·W₁ᵀ (a bias does not change a centred covariance). With the unbiased
// centred covariance Σ_Y = 1/(N−1)·(Y − 1·ȳᵀ)ᵀ(Y − 1·ȳᵀ) and the
// eigendecomposition Σ_Y₀ = Q·Λ·Qᵀ (Λ descending),
//
//	ΔΣ_Y = Qᵀ·Σ_Y₁·Q − Λ
//
// splits the same way: the diagonal is the variance change along the original
// feature directions, the off-diagonal part their rotation. Y is never formed:
// Σ_Y = W·Σ_X·Wᵀ, and Σ_X (n×n) is streamed over rows of X.
//
// # Forgetting
//
// Accuracy drop in points, mean KL(p_base ‖ p_after) from per-example logits
// (stable log-softmax, nats), cross-entropy and bits per character for
// language models, and the continual-learning metrics (average accuracy,
// backward transfer of Lopez-Paz & Ranzato 2017, forgetting per task of
// Chaudhry et al. 2018) over an accuracy matrix.
package analysis
