package httpapi

import (
	"errors"
	"io/fs"
	"net/http"
	"path"
	"strings"

	"github.com/labstack/echo/v4"
)

// handleStatic serves the embedded SPA. Unknown paths are a JSON 404, not the index page:
// the SPA has a single page, so a deep link that does not exist is a mistake worth seeing.
func handleStatic(files http.FileSystem) echo.HandlerFunc {
	return func(c echo.Context) error {
		p := path.Clean("/" + c.Request().URL.Path)
		if p == "/" {
			p = "/index.html"
		}
		if strings.HasSuffix(p, "/") || strings.Contains(p, "\x00") {
			return echo.ErrNotFound
		}
		f, err := files.Open(p)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) || errors.Is(err, fs.ErrInvalid) {
				return echo.ErrNotFound
			}
			return err
		}
		defer f.Close()
		st, err := f.Stat()
		if err != nil || st.IsDir() {
			return echo.ErrNotFound
		}
		if p == "/index.html" {
			c.Response().Header().Set("Cache-Control", "no-cache")
		}
		http.ServeContent(c.Response(), c.Request(), p, st.ModTime(), f)
		return nil
	}
}
