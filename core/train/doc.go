// Package train pretrains a network on task A, fine-tunes it on task B with a
// LoRA-family method (core/adapter) and measures what was learned and what
// was forgotten (DESIGN.md §2–§3).
//
// # Loops
//
// Both loops minimise the batch-mean cross-entropy with AdamW (β = 0.9,
// 0.999, ε = 1e-8, decoupled weight decay), the learning rate of
// LearningRate (linear warmup, then a cosine to zero) and clipping of the
// gradients' global norm, g ← g·min(1, c/(‖g‖₂ + 1e-6)). Epoch e visits the
// training examples in a permutation seeded by (seed, e); every random
// initial value is keyed by seed and variable name, so a configuration
// always gives the same numbers.
//
// # Pretraining cache
//
// Pretrain stores its checkpoint under CacheDir/pretrained/KEY, where KEY is
// the SHA-256 of SchemaVersion, the architecture, the dataset's checksum and
// the training configuration; a second call loads it. Entries appear
// atomically (a renamed temporary directory), a lock file serialises
// concurrent processes, and an interrupted pretraining resumes.
//
// # Fine-tuning
//
// Finetune loads the pretrained model, evaluates task A with its own head
// (HeadA), freezes everything, attaches the method's adapters to the target
// layers, trains a new head (HeadB) on task B, and evaluates task A again
// with the unchanged HeadA:
//
//	forgetting = acc_A(before) − acc_A(after)               (points)
//	mean KL    = 1/N Σ_i KL(softmax(z_i^before) ‖ softmax(z_i^after))   (nats)
//
// Training checkpoints (model, adapters, optimiser state, counters, curves)
// are written every Options.CheckpointEvery steps and at each epoch's end; a
// run killed at any point and started again finishes with the numbers of an
// uninterrupted run. With FinetuneConfig.RunDir the run also writes the
// directory core/analysis reads (merged weights, the initial SVD, probe
// inputs, task-A logits).
package train
