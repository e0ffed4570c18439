package hf

import (
	"encoding/json"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"sort"
	"strconv"

	"github.com/shrinkml/shrink/format/safetensors"
	"github.com/shrinkml/shrink/model"
)

// LoadStateDict reads a plain PyTorch state dict saved as one .safetensors
// file. The only arch it knows is "mlp": the file must hold the Linear layers
// of an nn.Sequential ("0.weight", "0.bias", "2.weight", ..., optionally all
// under one prefix such as "net."). Layer sizes come from the shapes, the
// layers are renamed layers.0, layers.1, ... in index order, and the activation
// is relu unless the __metadata__ key MetaActivation says otherwise (set
// m.Config.MLP.Activation to change it); MetaLabels, when present, gives the
// class labels. Tensors in the quantized safetensors layout keep their block
// type.
func LoadStateDict(path string, arch string) (*model.Model, error) {
	if arch != "mlp" {
		return nil, fmt.Errorf("hf %s: a state dict can be read as arch \"mlp\" only, not %q", path, arch)
	}
	ckpt, err := safetensors.OpenFile(path)
	if err != nil {
		return nil, fmt.Errorf("hf %s: %w", path, err)
	}
	ts, sizes, err := sequentialToMLP(ckpt.Tensors)
	if err != nil {
		ckpt.Close()
		return nil, fmt.Errorf("hf %s: %w", path, err)
	}
	m := &model.Model{
		Config:  model.Config{Arch: "mlp", MLP: &model.MLPConfig{Sizes: sizes, Activation: "relu"}},
		Tensors: ts, Source: path, Metadata: map[string]any{},
	}
	m.KeepAlive(ckpt)
	md := maps.Clone(ckpt.Metadata())
	if err := takeMLPMetadata(m.Config.MLP, md); err != nil {
		m.Close()
		return nil, fmt.Errorf("hf %s: %w", path, err)
	}
	putMetadata(m, md)
	if err := m.Validate(); err != nil {
		m.Close()
		return nil, fmt.Errorf("hf %s: %w", path, err)
	}
	return m, nil
}

// The __metadata__ keys of a state dict SaveStateDict writes that carry what
// a folder's config.json would: the activation ("relu" or "gelu") and, when
// the model has them, the class labels as a JSON array of strings.
const (
	MetaActivation = "shrink.mlp.activation"
	MetaLabels     = "shrink.mlp.labels"
)

// takeMLPMetadata moves MetaActivation and MetaLabels from md into mc.
func takeMLPMetadata(mc *model.MLPConfig, md map[string]string) error {
	if a, ok := md[MetaActivation]; ok {
		mc.Activation = a
		delete(md, MetaActivation)
	}
	if raw, ok := md[MetaLabels]; ok {
		if err := json.Unmarshal([]byte(raw), &mc.Labels); err != nil || mc.Labels == nil {
			return fmt.Errorf("__metadata__ %q is not a JSON array of strings", MetaLabels)
		}
		delete(md, MetaLabels)
	}
	return nil
}

// SaveStateDict writes an mlp classifier as one .safetensors state dict,
// atomically: the tensors a folder's model.safetensors would hold (quantized
// ones in the quantized layout) and its __metadata__ with the activation and
// labels added (MetaActivation, MetaLabels), without config.json; other
// config.json entries are not kept. LoadStateDict reads it back.
func SaveStateDict(path string, m *model.Model, force bool) error {
	if m == nil {
		return fmt.Errorf("hf %s: no model", path)
	}
	if m.Config.Arch != "mlp" {
		return fmt.Errorf("hf %s: a state dict has no config.json, so only an mlp classifier can be read back from one, not %q; save it as a folder", path, m.Config.Arch)
	}
	if err := m.Validate(); err != nil {
		return fmt.Errorf("hf %s: %w", path, err)
	}
	mc := m.Config.MLP
	if _, sizes, err := sequentialToMLP(m.Tensors); err != nil {
		return fmt.Errorf("hf %s: %w", path, err)
	} else if !slices.Equal(sizes, mc.Sizes) {
		return fmt.Errorf("hf %s: the tensors give layer sizes %v, the config says %v", path, sizes, mc.Sizes)
	}
	for _, t := range m.Tensors {
		if !safetensors.CanStore(t.DType) {
			return fmt.Errorf("hf %s: tensor %q has dtype %s, which safetensors cannot store", path, t.Name, t.DType)
		}
	}
	md, err := safetensorsMetadata(m)
	if err != nil {
		return fmt.Errorf("hf %s: %w", path, err)
	}
	md[MetaActivation] = mc.Activation
	if len(mc.Labels) > 0 {
		b, err := json.Marshal(mc.Labels)
		if err != nil {
			return fmt.Errorf("hf %s: labels: %w", path, err)
		}
		md[MetaLabels] = string(b)
	}
	return safetensors.WriteFile(path, m.Tensors, md, force)
}

var sequentialName = regexp.MustCompile(`^(.*?)([0-9]+)\.(weight|bias)$`)

// sequentialToMLP renames the Linear layers of an nn.Sequential state dict to
// layers.N.weight/bias and infers the layer sizes from their shapes.
func sequentialToMLP(tensors []*model.Tensor) ([]*model.Tensor, []int, error) {
	type layer struct {
		index        int
		weight, bias *model.Tensor
	}
	layers := map[int]*layer{}
	prefix := ""
	for i, t := range tensors {
		sm := sequentialName.FindStringSubmatch(t.Name)
		if sm == nil {
			return nil, nil, fmt.Errorf("tensor %q is not a parameter of an nn.Sequential Linear layer (N.weight or N.bias)", t.Name)
		}
		if i == 0 {
			prefix = sm[1]
		} else if sm[1] != prefix {
			return nil, nil, fmt.Errorf("tensor %q does not share the prefix %q of the others", t.Name, prefix)
		}
		idx, err := strconv.Atoi(sm[2])
		if err != nil || idx > 1<<20 {
			return nil, nil, fmt.Errorf("tensor %q has an unusable layer index", t.Name)
		}
		l := layers[idx]
		if l == nil {
			l = &layer{index: idx}
			layers[idx] = l
		}
		if sm[3] == "weight" {
			l.weight = t
		} else {
			l.bias = t
		}
	}
	if len(layers) == 0 {
		return nil, nil, fmt.Errorf("no Linear layers found")
	}
	order := make([]*layer, 0, len(layers))
	for _, l := range layers {
		order = append(order, l)
	}
	sort.Slice(order, func(i, j int) bool { return order[i].index < order[j].index })
	var sizes []int
	var out []*model.Tensor
	for i, l := range order {
		if l.weight == nil || l.bias == nil {
			return nil, nil, fmt.Errorf("layer %s%d needs both a weight and a bias", prefix, l.index)
		}
		if len(l.weight.Shape) != 2 {
			return nil, nil, fmt.Errorf("tensor %q has shape %v; a Linear weight is [out, in]", l.weight.Name, l.weight.Shape)
		}
		outN, inN := l.weight.Shape[0], l.weight.Shape[1]
		if i == 0 {
			sizes = append(sizes, inN)
		} else if inN != sizes[len(sizes)-1] {
			return nil, nil, fmt.Errorf("tensor %q takes %d inputs, the layer before gives %d", l.weight.Name, inN, sizes[len(sizes)-1])
		}
		if len(l.bias.Shape) != 1 || l.bias.Shape[0] != outN {
			return nil, nil, fmt.Errorf("tensor %q has shape %v, want [%d]", l.bias.Name, l.bias.Shape, outN)
		}
		sizes = append(sizes, outN)
		out = append(out,
			&model.Tensor{Name: model.MLPWeight(i), DType: l.weight.DType, Shape: l.weight.Shape, Data: l.weight.Data},
			&model.Tensor{Name: model.MLPBias(i), DType: l.bias.DType, Shape: l.bias.Shape, Data: l.bias.Data})
	}
	return out, sizes, nil
}
