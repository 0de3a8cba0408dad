//go:build !unix

package toolchain

// lockFile is a no-op where advisory file locks are unavailable (GoNB itself
// runs only on Unix-like systems).
func lockFile(path string) (unlock func(), err error) { return func() {}, nil }
