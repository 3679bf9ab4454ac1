// Package api holds the OpenAPI 3.1 description of the BFF's HTTP contract. It is embedded so
// that the admin listener serves exactly the document the end-to-end tests check every
// response against.
package api

import _ "embed"

// OpenAPI is openapi.yaml.
//
//go:embed openapi.yaml
var OpenAPI string
