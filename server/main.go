// Command server is the Basiq client-token BFF: `go run ./server [command]`. With no
// configuration it runs in demo mode (SQLite, in-process store, the Basiq emulator).
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
)

func main() {
	if err := run(context.Background(), os.Args, os.Getenv, os.Stdin, os.Stdout, os.Stderr); err != nil {
		if errors.Is(err, errUsage) {
			os.Exit(2) // the usage text has been printed
		}
		fmt.Fprintf(os.Stderr, "server: %v\n", err)
		os.Exit(1)
	}
}
