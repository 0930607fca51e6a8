// kstatus: prints what sigs.k8s.io/cli-utils/pkg/kstatus/status.Compute (the library Flux's
// health checks, kpt and `kubectl wait`-style tools use) says about one Kubernetes object.
//
//	kstatus < object.json   →   {"status":"Current","message":"..."}
//
// The object is JSON (or YAML) on stdin, as `kubectl get -o json` prints it. Exit code 2 when
// the object cannot be read or Compute fails.
package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
	"sigs.k8s.io/yaml"
)

func main() {
	in, err := io.ReadAll(os.Stdin)
	if err != nil {
		fail(err)
	}
	raw, err := yaml.YAMLToJSON(in)
	if err != nil {
		fail(fmt.Errorf("stdin is not a JSON/YAML object: %w", err))
	}
	// Unstructured's decoder keeps integers int64, as client-go hands them to kstatus.
	u := &unstructured.Unstructured{}
	if err := u.UnmarshalJSON(raw); err != nil {
		fail(fmt.Errorf("stdin is not a Kubernetes object: %w", err))
	}
	res, err := status.Compute(u)
	if err != nil {
		fail(err)
	}
	out, _ := json.Marshal(map[string]string{"status": res.Status.String(), "message": res.Message})
	fmt.Println(string(out))
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "kstatus:", err)
	os.Exit(2)
}
