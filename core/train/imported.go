package train

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"slices"

	. "github.com/gomlx/gomlx/pkg/core/graph"
	mlctx "github.com/gomlx/gomlx/pkg/ml/context"
	"github.com/gomlx/gopjrt/dtypes"

	"github.com/prism-lora/prism/core/adapter"
	"github.com/prism-lora/prism/core/models"
	"github.com/prism-lora/prism/core/models/hfvit"
)

// ImportedViT is the configuration of ImportedViTNetwork (part of cache
// keys and run fingerprints).
type ImportedViT struct {
	ViT models.ViTConfig `json:"vit"`
	// InputShape is the dataset's example shape [h, w, c]; Upsample the
	// integer factors [H/h, W/w] to the model's image size; RepeatChannel
	// copies a single channel to the model's C.
	InputShape    []int                `json:"input_shape"`
	Upsample      [2]int               `json:"upsample"`
	RepeatChannel bool                 `json:"repeat_channel,omitempty"`
	Normalize     *hfvit.Normalization `json:"normalize,omitempty"`
}

// ImportedViTNetwork is the ViT of a prism model directory (info, from
// `prism import hf-vit`) as a Network on examples of inputShape [h, w, c]
// with pixels in [0, 1]: each image is upsampled to the model's H×W by
// repeating every pixel (H/h)×(W/w) times (nearest neighbour; the factors
// must be integers — this is not the bilinear resize of transformers'
// image processor), a single channel is repeated to the model's C, and the
// model's normalisation (x − mean)/std per channel is applied before the
// ViT's patch embedding. Layers and features are those of ViTNetwork.
func ImportedViTNetwork(info hfvit.ModelInfo, inputShape []int) (Network, error) {
	v := info.ViT
	if err := v.Validate(); err != nil {
		return Network{}, err
	}
	img := v.ImageShape()
	if len(inputShape) != 3 {
		return Network{}, fmt.Errorf("imported vit: examples of shape %v are not images [h, w, c]", inputShape)
	}
	h, w, c := inputShape[0], inputShape[1], inputShape[2]
	if h <= 0 || w <= 0 || img[0]%h != 0 || img[1]%w != 0 {
		return Network{}, fmt.Errorf("imported vit: %d×%d images cannot be upsampled to the model's %d×%d by integer factors", h, w, img[0], img[1])
	}
	if c != img[2] && c != 1 {
		return Network{}, fmt.Errorf("imported vit: images have %d channels, the model %d (a single channel would be repeated)", c, img[2])
	}
	if n := info.Normalize; n != nil && (len(n.Mean) != img[2] || len(n.Std) != img[2]) {
		return Network{}, fmt.Errorf("imported vit: normalisation %+v for %d channels", *n, img[2])
	}
	v.Classes = 1 // not part of the backbone
	cfg := ImportedViT{ViT: v, InputShape: slices.Clone(inputShape), Upsample: [2]int{img[0] / h, img[1] / w},
		RepeatChannel: c != img[2], Normalize: info.Normalize}
	return Network{
		Kind:       "vit",
		Config:     cfg,
		InputShape: slices.Clone(inputShape),
		Layers:     backboneLayers(v.LinearLayers()),
		FeatureDim: v.Width,
		Features: func(ctx *mlctx.Context, linear adapter.LinearFunc, x *Node) *Node {
			return models.ViTFeatures(ctx, v, models.Run{Linear: linear}, cfg.images(x))
		},
		Dense: models.Dense,
		Seed:  models.SetSeed,
	}, nil
}

// images maps a batch of examples [B, h, w, c] to the model's input
// [B, H, W, C]: upsampled, channels repeated, normalised.
func (c ImportedViT) images(x *Node) *Node {
	dtype := c.ViT.DType
	if dtype == dtypes.InvalidDType {
		dtype = dtypes.Float32
	}
	if x.DType() != dtype {
		x = ConvertDType(x, dtype)
	}
	b := x.Shape().Dimensions[0]
	h, w, ch := c.InputShape[0], c.InputShape[1], c.InputShape[2]
	x = Reshape(x, b, h, w, ch)
	if fy, fx := c.Upsample[0], c.Upsample[1]; fy > 1 || fx > 1 {
		x = Reshape(x, b, h, 1, w, 1, ch)
		x = BroadcastToDims(x, b, h, fy, w, fx, ch)
		h, w = h*fy, w*fx
		x = Reshape(x, b, h, w, ch)
	}
	if c.RepeatChannel {
		ch = c.ViT.Channels
		x = BroadcastToDims(x, b, h, w, ch)
	}
	if n := c.Normalize; n != nil {
		scale, offset := make([]float64, ch), make([]float64, ch)
		for i := range ch {
			scale[i], offset[i] = 1/n.Std[i], -n.Mean[i]/n.Std[i]
		}
		g := x.Graph()
		x = Add(Mul(x, ExpandLeftToRank(ConstAsDType(g, dtype, scale), 4)), ExpandLeftToRank(ConstAsDType(g, dtype, offset), 4))
	}
	return x
}

// importedPretrained is Pretrain for cfg.Model: the model directory's
// weights are the pretrained model; task A must have as many classes as
// its head.
func importedPretrained(goctx context.Context, cfg PretrainConfig, o Options) (*Pretrained, error) {
	info, err := hfvit.ReadModelInfo(cfg.Model)
	if err != nil {
		return nil, err
	}
	want, err := ImportedViTNetwork(info, cfg.Network.InputShape)
	if err != nil {
		return nil, err
	}
	if cfg.Network.Kind != want.Kind || !reflect.DeepEqual(cfg.Network.Config, want.Config) {
		return nil, fmt.Errorf("pretrain: the network %s %+v is not the one model directory %s describes (build it with ImportedViTNetwork)",
			cfg.Network.Kind, cfg.Network.Config, cfg.Model)
	}
	data, err := o.open(goctx, cfg.Task)
	if err != nil {
		return nil, err
	}
	if n := data.Spec().NumClasses(); n != info.ViT.Classes {
		return nil, fmt.Errorf("pretrain: the model in %s has a head of %d classes, task A %s has %d: forgetting is measured on task A with the model's own head, so task A must be the task of its head",
			cfg.Model, info.ViT.Classes, cfg.Task, n)
	}
	checksum, err := dataChecksum(data)
	if err != nil {
		return nil, err
	}
	path := filepath.Join(cfg.Model, hfvit.ModelFile)
	sum, err := fileSHA256(path)
	if err != nil {
		return nil, err
	}
	net, err := cfg.Network.configJSON()
	if err != nil {
		return nil, err
	}
	key, hashed, err := hashJSON("prism-imported", struct {
		Schema  int             `json:"schema"`
		Weights string          `json:"weights_sha256"`
		Network json.RawMessage `json:"network"`
	}{SchemaVersion, sum, net})
	if err != nil {
		return nil, err
	}
	return &Pretrained{Key: key, Dir: cfg.Model, ModelPath: path, Task: cfg.Task, Classes: info.ViT.Classes, Checksum: checksum,
		Config: hashed, Imported: true, Cached: true, Network: cfg.Network}, nil
}

// fileSHA256 is the hex SHA-256 of a file's contents.
func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("hashing %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
