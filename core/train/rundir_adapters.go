package train

import (
	"path/filepath"

	"github.com/prism-lora/prism/core/adapter/peft"
)

// writeAdapters stores the trained adapters, their initial factors and the
// new head in RunAdaptersFile (adapter methods only), with the network's
// configuration and the base model's provenance as metadata, so that
// `prism export peft` can convert them to PEFT's format.
func (w *runDirWriter) writeAdapters(res Result) error {
	layers, err := peft.FromAdapted(w.ctx, w.adapted)
	if err != nil || len(layers) == 0 {
		return err
	}
	head, err := peft.SavedFrom(w.ctx, HeadB)
	if err != nil {
		return err
	}
	net, err := w.cfg.Pretrain.Network.configJSON()
	if err != nil {
		return err
	}
	meta := map[string]string{peft.MetaNetwork: string(net), peft.MetaPretrainedKey: res.Pretrained}
	if m := w.cfg.Pretrain.Model; m != "" {
		if abs, err := filepath.Abs(m); err == nil {
			m = abs
		}
		meta[peft.MetaBaseModel] = m
	}
	return peft.WriteTrained(filepath.Join(w.dir, RunAdaptersFile), peft.Trained{Layers: layers, Saved: []peft.SavedModule{head}, Metadata: meta})
}
