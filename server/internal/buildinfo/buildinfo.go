// Package buildinfo says which build of the BFF is running: version, VCS revision and Go
// version, for --version, the bff_build_info metric and the User-Agent sent to Basiq. It
// imports only the standard library.
package buildinfo

import "runtime/debug"

// version is set at link time (-ldflags "-X .../buildinfo.version=v1.4.0") by release builds;
// it is never written at run time. Empty: the module version Go recorded, else "devel".
var version string

// Info describes the running binary.
type Info struct {
	Version  string // v1.4.0, or devel
	Revision string // VCS commit (with "-dirty" for a modified tree), or unknown
	Go       string // go1.26.0
}

// Read returns the build's Info from the link-time version and debug.ReadBuildInfo.
func Read() Info {
	in := Info{Version: version, Revision: "unknown", Go: "unknown"}
	bi, ok := debug.ReadBuildInfo()
	if ok {
		in.Go = bi.GoVersion
		if in.Version == "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			in.Version = bi.Main.Version
		}
		var dirty bool
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				in.Revision = s.Value
			case "vcs.modified":
				dirty = s.Value == "true"
			}
		}
		if dirty && in.Revision != "unknown" {
			in.Revision += "-dirty"
		}
	}
	if in.Version == "" {
		in.Version = "devel"
	}
	return in
}

// UserAgent is the User-Agent the BFF sends to Basiq: basiq-bff/<version>.
func (in Info) UserAgent() string {
	return "basiq-bff/" + in.Version
}

// String is the --version line.
func (in Info) String() string {
	return "basiq-bff " + in.Version + " (revision " + in.Revision + ", " + in.Go + ")"
}
