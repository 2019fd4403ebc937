package deploy

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// selfSigned writes a throwaway certificate and key for the load balancer
// configs' TLS lines, which name files that only exist on a real host.
func selfSigned(t *testing.T, dir string) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "mako.test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		DNSNames: []string{"mako.test"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})
}

func write(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// haproxy -c accepts deploy/lb/haproxy.cfg, when haproxy is installed
// (CI does not install it).
func TestHAProxyConfig(t *testing.T) {
	bin, err := exec.LookPath("haproxy")
	if err != nil {
		t.Skip("haproxy not installed")
	}
	dir := t.TempDir()
	cert, key := selfSigned(t, dir)
	pemPath := filepath.Join(dir, "mako.pem")
	write(t, pemPath, append(cert, key...))
	raw, err := os.ReadFile("lb/haproxy.cfg")
	if err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "haproxy.cfg")
	write(t, cfg, bytes.ReplaceAll(raw, []byte("/etc/haproxy/mako.pem"), []byte(pemPath)))
	// Warnings (a deprecated keyword, a timeout missing) exit 0: fail on them too.
	if out, err := exec.Command(bin, "-c", "-f", cfg).CombinedOutput(); err != nil || bytes.Contains(out, []byte("[WARNING]")) {
		t.Errorf("haproxy -c -f lb/haproxy.cfg: %v\n%s", err, out)
	}
}

// nginx -t accepts deploy/lb/nginx.conf (a server block for the http
// context, wrapped here in a minimal main config), when nginx is installed
// (CI does not install it).
func TestNginxConfig(t *testing.T) {
	bin, err := exec.LookPath("nginx")
	if err != nil {
		t.Skip("nginx not installed")
	}
	dir := t.TempDir()
	cert, key := selfSigned(t, dir)
	crt, kf := filepath.Join(dir, "mako.crt"), filepath.Join(dir, "mako.key")
	write(t, crt, cert)
	write(t, kf, key)
	raw, err := os.ReadFile("lb/nginx.conf")
	if err != nil {
		t.Fatal(err)
	}
	raw = bytes.ReplaceAll(raw, []byte("/etc/nginx/mako.crt"), []byte(crt))
	raw = bytes.ReplaceAll(raw, []byte("/etc/nginx/mako.key"), []byte(kf))
	write(t, filepath.Join(dir, "mako.conf"), raw)
	main := "error_log stderr;\npid " + filepath.Join(dir, "nginx.pid") + ";\nevents {}\nhttp {\n" +
		"    access_log off;\n" +
		"    client_body_temp_path " + dir + "; proxy_temp_path " + dir + "; fastcgi_temp_path " + dir + ";\n" +
		"    uwsgi_temp_path " + dir + "; scgi_temp_path " + dir + ";\n" +
		"    include " + filepath.Join(dir, "mako.conf") + ";\n}\n"
	nc := filepath.Join(dir, "nginx.conf")
	write(t, nc, []byte(main))
	if out, err := exec.Command(bin, "-t", "-p", dir, "-c", nc).CombinedOutput(); err != nil || bytes.Contains(out, []byte("[warn]")) {
		t.Errorf("nginx -t with lb/nginx.conf: %v\n%s", err, out)
	}
}
