package ray

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

// maxPackageSize is the largest package EnsurePackage uploads: the
// dashboard refuses request bodies above 100 MiB.
const maxPackageSize = 100 << 20

// EnsurePackage pins and checks gcs://<name> with GET
// /api/packages/gcs/<name>; on 404 it PUTs data. uploaded reports whether a
// PUT happened (R6).
//
// The GET pins the URI for about 10 minutes even when the package is
// missing, so call EnsurePackage right before each submit that references
// it. name may be given with or without the "gcs://" prefix, for example
// "_ray_pkg_9b9bfb16ae11dbd7.zip"; the server does not check it against the
// content. data is the zip archive; larger than maxPackageSize is an error
// without any upload.
func (c *Client) EnsurePackage(ctx context.Context, name string, data []byte) (uploaded bool, err error) {
	name = strings.TrimPrefix(name, "gcs://")
	if name == "" || strings.ContainsAny(name, "/\\") {
		return false, fmt.Errorf("ray: invalid package name %q", name)
	}
	path := "/api/packages/gcs/" + url.PathEscape(name)
	has, err := c.hasPackage(ctx, path)
	if err != nil || has {
		return false, err
	}
	if len(data) > maxPackageSize {
		return false, fmt.Errorf("ray: package gcs://%s is %.1f MiB, more than the dashboard's 100 MiB upload limit; exclude large files (such as .git) or use a remote URI",
			name, float64(len(data))/(1<<20))
	}
	if len(data) == 0 {
		return false, fmt.Errorf("ray: package gcs://%s does not exist and there is no data to upload", name)
	}
	if err := c.do(ctx, http.MethodPut, path, data, nil); err != nil {
		return false, err
	}
	return true, nil
}

// HasPackage reports whether the cluster holds gcs://<name>, with GET
// /api/packages/gcs/<name> (200: yes, 404: no; any other answer is an
// error). Like EnsurePackage, the GET pins the URI for about 10 minutes.
func (c *Client) HasPackage(ctx context.Context, name string) (bool, error) {
	name = strings.TrimPrefix(name, "gcs://")
	if name == "" || strings.ContainsAny(name, "/\\") {
		return false, fmt.Errorf("ray: invalid package name %q", name)
	}
	return c.hasPackage(ctx, "/api/packages/gcs/"+url.PathEscape(name))
}

func (c *Client) hasPackage(ctx context.Context, path string) (bool, error) {
	err := c.do(ctx, http.MethodGet, path, nil, nil)
	if err == nil {
		return true, nil
	}
	var he *HTTPError
	if errors.As(err, &he) && he.Status == http.StatusNotFound {
		return false, nil
	}
	return false, err
}
