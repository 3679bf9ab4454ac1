// Package web holds the single-page app, served embedded by the BFF.
//
// The files are plain ES modules with no build step; tests and docs in this directory (test/,
// README.md) are deliberately not embedded.
package web

import "embed"

// FS is the SPA: index.html at the root, assets beside it (/app.js, /app.css, ...).
//
//go:embed index.html *.css *.js *.svg
var FS embed.FS
