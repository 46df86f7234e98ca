// Package examples holds scopegate's demo configuration and policy; the
// policy is embedded for `scopegate serve --dev`.
package examples

import _ "embed"

// Policy is examples/policy.yaml.
//
//go:embed policy.yaml
var Policy []byte
