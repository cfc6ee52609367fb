package broker

import (
	"fmt"
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/config"
)

// handleIncrementalAlterConfigs applies SET, DELETE, APPEND and SUBTRACT to
// individual topic settings (KIP-339), leaving the others alone.
func (b *Broker) handleIncrementalAlterConfigs(req *kmsg.IncrementalAlterConfigsRequest) *kmsg.IncrementalAlterConfigsResponse {
	resp := req.ResponseKind().(*kmsg.IncrementalAlterConfigsResponse)
	for _, rr := range req.Resources {
		sr := kmsg.NewIncrementalAlterConfigsResponseResource()
		sr.ResourceType, sr.ResourceName = rr.ResourceType, rr.ResourceName
		err := b.alterResource(rr.ResourceType, rr.ResourceName, req.ValidateOnly, func(cur map[string]string) (map[string]string, error) {
			return applyIncremental(b.cfg, cur, rr.Configs)
		})
		sr.ErrorCode, sr.ErrorMessage = errorCode(err), errorMessage(err)
		resp.Resources = append(resp.Resources, sr)
	}
	return resp
}

func applyIncremental(cfg *config.Broker, cur map[string]string, ops []kmsg.IncrementalAlterConfigsRequestResourceConfig) (map[string]string, error) {
	next := map[string]string{}
	for k, v := range cur {
		next[k] = v
	}
	for _, op := range ops {
		if !config.IsTopicConfig(op.Name) {
			return nil, fmt.Errorf("%w: unknown topic setting %q", config.ErrInvalidConfig, op.Name)
		}
		switch op.Op {
		case kmsg.IncrementalAlterConfigOpSet:
			if op.Value == nil {
				return nil, fmt.Errorf("%w: %s: SET needs a value", config.ErrInvalidConfig, op.Name)
			}
			next[op.Name] = *op.Value
		case kmsg.IncrementalAlterConfigOpDelete:
			delete(next, op.Name)
		case kmsg.IncrementalAlterConfigOpAppend, kmsg.IncrementalAlterConfigOpSubtract:
			if !config.IsListTopicConfig(op.Name) {
				return nil, fmt.Errorf("%w: %s: %v", config.ErrInvalidConfig, op.Name, errNotAList)
			}
			items := currentList(cfg, next, op.Name)
			for _, v := range splitList(op.Value) {
				i := slices.Index(items, v)
				if op.Op == kmsg.IncrementalAlterConfigOpAppend && i < 0 {
					items = append(items, v)
				} else if op.Op == kmsg.IncrementalAlterConfigOpSubtract && i >= 0 {
					items = slices.Delete(items, i, i+1)
				}
			}
			next[op.Name] = strings.Join(items, ",")
		default:
			return nil, fmt.Errorf("%w: unknown operation %d", kerr.InvalidRequest, op.Op)
		}
	}
	return next, nil
}

// currentList is a list setting's effective items: the override if any,
// else the broker's default.
func currentList(cfg *config.Broker, overrides map[string]string, name string) []string {
	for _, e := range cfg.DescribeTopicConfig(overrides) {
		if e.Name == name {
			return splitList(&e.Value)
		}
	}
	return nil
}

func splitList(v *string) []string {
	if v == nil {
		return nil
	}
	var out []string
	for _, s := range strings.Split(*v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

func init() {
	register(api{key: kmsg.IncrementalAlterConfigs, min: 0, max: 1, forward: true,
		handle: method((*Broker).handleIncrementalAlterConfigs),
		errorCodes: codes(func(r *kmsg.IncrementalAlterConfigsResponse, count func(int16)) {
			for _, res := range r.Resources {
				count(res.ErrorCode)
			}
		}),
	})
}
