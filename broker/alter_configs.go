package broker

import (
	"errors"
	"fmt"
	"strconv"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/config"
	"github.com/sluice-io/sluice/controller"
)

// handleAlterConfigs replaces a topic's whole set of overrides, or a
// broker's dynamic settings (the legacy, non-incremental API: settings not
// named go back to their defaults).
func (b *Broker) handleAlterConfigs(req *kmsg.AlterConfigsRequest) *kmsg.AlterConfigsResponse {
	resp := req.ResponseKind().(*kmsg.AlterConfigsResponse)
	for _, rr := range req.Resources {
		sr := kmsg.NewAlterConfigsResponseResource()
		sr.ResourceType, sr.ResourceName = rr.ResourceType, rr.ResourceName
		err := b.alterResource(rr.ResourceType, rr.ResourceName, req.ValidateOnly, func(map[string]string) (map[string]string, error) {
			next := map[string]string{}
			for _, c := range rr.Configs {
				if c.Value == nil {
					return nil, fmt.Errorf("%w: %s: null value", config.ErrInvalidConfig, c.Name)
				}
				next[c.Name] = *c.Value
			}
			return next, nil
		})
		sr.ErrorCode, sr.ErrorMessage = errorCode(err), errorMessage(err)
		resp.Resources = append(resp.Resources, sr)
	}
	return resp
}

// alterResource routes one resource of AlterConfigs or
// IncrementalAlterConfigs; change computes the resource's new settings
// from its current ones.
func (b *Broker) alterResource(typ kmsg.ConfigResourceType, name string, validateOnly bool, change func(cur map[string]string) (map[string]string, error)) error {
	switch typ {
	case kmsg.ConfigResourceTypeTopic:
		return b.alterTopicConfigs(name, validateOnly, change)
	case kmsg.ConfigResourceTypeBroker:
		return b.alterBrokerConfigs(name, validateOnly, change)
	default:
		return fmt.Errorf("%w: unsupported resource type %d", kerr.InvalidRequest, typ)
	}
}

// alterBrokerConfigs changes the dynamic settings of a broker (name is its
// id) or of every broker (name ""), as Kafka's ConfigAdminManager and
// controller: only dynamic settings with valid values pass
// (config.ValidateDynamicBrokerConfig), and every refusal is
// INVALID_REQUEST, as Kafka's. The change is a controller ConfigRecord, so
// every broker of the cluster sees it in the metadata and keeps it across
// restarts.
//
// Kafka's receiving broker also refuses another broker's id before it
// forwards the change; here a broker forwards the request whole
// (api.forward) and the controller's node cannot tell who received it, so
// any registered broker's id is accepted: a mistyped id is still refused.
func (b *Broker) alterBrokerConfigs(name string, validateOnly bool, change func(cur map[string]string) (map[string]string, error)) error {
	if err := controller.ValidateBrokerResource(name); err != nil {
		return fmt.Errorf("%w: %v", kerr.InvalidRequest, err)
	}
	img := b.metaImage()
	if name != "" {
		id, _ := strconv.Atoi(name) // a valid id: checked above
		if _, ok := img.Broker(int32(id)); !ok {
			return fmt.Errorf("%w: unexpected broker id %s: no such broker is registered", kerr.InvalidRequest, name)
		}
	}
	cur := img.BrokerConfigs(name)
	next, err := change(cur)
	if err != nil {
		return fmt.Errorf("%w: %v", kerr.InvalidRequest, err)
	}
	for k, v := range next {
		if old, ok := cur[k]; ok && old == v {
			continue // unchanged: a value an older build accepted stays
		}
		if err := config.ValidateDynamicBrokerConfig(k, v); err != nil {
			return fmt.Errorf("%w: %v", kerr.InvalidRequest, err)
		}
	}
	if validateOnly {
		return nil
	}
	if _, err := b.meta.Commit(func(s *controller.State) ([]controller.Record, error) { return s.PlanBrokerConfigs(name, next) }); err != nil {
		return err
	}
	b.syncDynamicConfigs()
	b.logger.Info("dynamic broker config changed", "resource", brokerResource(name), "configs", next)
	return nil
}

// brokerResource names a BROKER config resource for people.
func brokerResource(name string) string {
	if name == "" {
		return "cluster default"
	}
	return "broker " + name
}

// alterTopicConfigs computes a topic's new overrides with change, validates
// every one of them, then persists and applies them unless validateOnly.
func (b *Broker) alterTopicConfigs(name string, validateOnly bool, change func(cur map[string]string) (map[string]string, error)) error {
	mt, ok := b.metaImage().Topic(name)
	if !ok {
		return fmt.Errorf("topic %q: %w", name, controller.ErrUnknownTopic)
	}
	next, err := change(mt.Configs)
	if err != nil {
		return err
	}
	if err := clientMayReconfigure(name, mt.Configs, next); err != nil {
		b.logRefusal("AlterConfigs", name, err)
		return err
	}
	for k, v := range next {
		if err := config.ValidateTopicConfig(k, v); err != nil {
			return err
		}
	}
	if _, err := b.cfg.TopicConfig(next); err != nil {
		return err
	}
	if validateOnly {
		return nil
	}
	if _, err := b.meta.Commit(func(s *controller.State) ([]controller.Record, error) { return s.PlanTopicConfigs(name, next) }); err != nil {
		return err
	}
	if err := b.applyImage()[name]; err != nil {
		return err
	}
	b.logger.Info("topic config changed", "topic", name, "configs", next)
	return nil
}

var errNotAList = errors.New("APPEND and SUBTRACT apply only to list settings")

func init() {
	register(api{key: kmsg.AlterConfigs, min: 0, max: 2, forward: true,
		handle: method((*Broker).handleAlterConfigs),
		errorCodes: codes(func(r *kmsg.AlterConfigsResponse, count func(int16)) {
			for _, res := range r.Resources {
				count(res.ErrorCode)
			}
		}),
	})
}
