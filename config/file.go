package config

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"go.yaml.in/yaml/v3"
)

// applyFile sets the settings of the YAML file at path: a flat mapping
// whose keys are flag names in snake_case. A scalar goes to the flag's Set
// as written; a sequence, for a list setting, is joined with commas; null
// is "". It reports every unknown key and bad value of the file.
func (f *flagSet) applyFile(path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("config file: %w", err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if len(doc.Content) == 0 { // empty, or only comments
		return nil
	}
	root := doc.Content[0]
	if root.Kind == yaml.ScalarNode && root.Tag == "!!null" {
		return nil
	}
	if root.Kind != yaml.MappingNode {
		return fmt.Errorf("%s:%d: want a mapping of settings such as nats_listen: 127.0.0.1:4222", path, root.Line)
	}
	f.newSource()
	var errs []error
	seen := map[string]bool{}
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		where := fmt.Sprintf("%s:%d: %s", path, k.Line, k.Value)
		if k.Kind != yaml.ScalarNode {
			errs = append(errs, fmt.Errorf("%s:%d: want a setting name as key", path, k.Line))
			continue
		}
		name := strings.ReplaceAll(k.Value, "_", "-")
		switch {
		case name == "config":
			errs = append(errs, fmt.Errorf("%s: %w: name the file with --config or ARRWCDC_CONFIG", where, ErrUnknownSetting))
			continue
		case strings.Contains(k.Value, "-") || f.lookup(name) == nil:
			errs = append(errs, f.unknown(where, name))
			continue
		case seen[name]:
			errs = append(errs, fmt.Errorf("%s: given twice", where))
			continue
		}
		seen[name] = true
		value, err := scalar(v, f.values[name])
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", where, err))
			continue
		}
		errs = append(errs, f.set(name, value, where))
	}
	return errors.Join(errs...)
}

// scalar returns the text of a YAML value for the Set of bv.
func scalar(n *yaml.Node, bv *boundValue) (string, error) {
	switch n.Kind {
	case yaml.ScalarNode:
		if n.Tag == "!!null" {
			return "", nil
		}
		return n.Value, nil
	case yaml.SequenceNode:
		if _, ok := bv.Value.(*listValue); !ok {
			return "", errors.New("want one value, not a sequence")
		}
		items := make([]string, 0, len(n.Content))
		for _, item := range n.Content {
			if item.Kind != yaml.ScalarNode {
				return "", errors.New("want a sequence of strings")
			}
			items = append(items, item.Value)
		}
		return strings.Join(items, ","), nil
	default:
		return "", errors.New("want a string, number or sequence")
	}
}
