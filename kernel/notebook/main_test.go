package notebook_test

import (
	"os"
	"testing"

	"github.com/prism-lora/prism/kernel/kerneltest"
)

func TestMain(m *testing.M) { os.Exit(kerneltest.Main(m)) }
