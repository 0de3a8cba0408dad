// Package docker holds prism's Dockerfiles (cpu.Dockerfile, cuda.Dockerfile)
// and the test that keeps them honest: every script, setup part, make target,
// prism command and repository path they name exists, and every base image is
// pinned to an exact version. It has no code; see README.md.
package docker
