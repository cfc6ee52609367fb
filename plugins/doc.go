// Package plugins will host out-of-process extensions to the broker (for
// example record transforms and authorizers), loaded through
// github.com/hashicorp/go-plugin so that a faulty plugin cannot take the
// broker down with it.
//
// Nothing is built here yet; see the roadmap in README.md.
package plugins
