//go:build !linux

package store

import "errors"

var statfsType = func(string) (int64, error) { return 0, errors.New("statfs type unavailable") }
