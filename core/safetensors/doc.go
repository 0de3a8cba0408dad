// Package safetensors reads and writes the safetensors tensor file format.
//
// A safetensors file is
//
//	8 bytes   N, the header length, an unsigned little-endian 64-bit integer
//	N bytes   the header: a UTF-8 JSON object, padded at the end with spaces
//	rest      the data section: every tensor's elements, little-endian, row-major
//
// The header maps each tensor name to {"dtype": "F32", "shape": [m, n],
// "data_offsets": [begin, end]}, offsets relative to the start of the data
// section, end exclusive; the optional key "__metadata__" holds a flat
// string→string map. Valid files have tensors that tile the data section
// exactly: sorted by offset they start at 0, each begins where the previous
// one ends, each spans elements(shape)·size(dtype) bytes, and the last one
// ends at the end of the file.
//
// Reading is lazy: [Open] reads and validates only the header, and each
// tensor's bytes are read on demand with positioned reads ([Reader.Raw],
// [Reader.Float32s], [Reader.Float64s], [ReadMatrix]), so a large model is
// never held in memory twice and need not be held whole at all. F16 and BF16
// values are widened exactly to float32 or float64; every other dtype of the
// format can be read as raw bytes and written back unchanged.
//
// Writing is deterministic and byte-compatible with the reference
// implementation (huggingface/safetensors): the header is compact JSON with
// "__metadata__" first (keys sorted), then the tensors in data order —
// descending dtype alignment, then name — and is padded with spaces to a
// multiple of 8 bytes so every tensor starts 8-byte aligned. [WriteFile] and
// [Create] write to a temporary file in the destination directory, fsync it
// and rename it into place, so a reader never sees a partial file.
//
// Every error about a file's contents is a *[FormatError] naming the file,
// the tensor (when one is concerned) and what is wrong; it matches
// [ErrFormat] with errors.Is.
package safetensors
