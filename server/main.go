// Command server is the Basiq client-token BFF: `go run ./server [command]`. With no
// configuration it runs in demo mode (SQLite, in-process store, the Basiq emulator).
package main

import (
	"context"
	"fmt"
	"os"
)

func main() {
	if err := run(context.Background(), os.Args, os.Getenv, os.Stdin, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintf(os.Stderr, "server: %v\n", err)
		os.Exit(1)
	}
}
