package cluster

import (
	"context"
	"fmt"
	"maps"
	"net"
	"slices"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// maxEndpointsPerSlice is the endpointslice controller's default
// (--max-endpoints-per-slice): larger Services get several slices.
const maxEndpointsPerSlice = 100

// Endpoint is one pod behind a Service, as the endpointslice controller would
// describe it.
type Endpoint struct {
	IP          string
	Hostname    string // set for pods with spec.hostname and a matching subdomain
	Pod         string // targetRef name
	NodeName    string
	NotReady    bool // the pod's Ready condition is false
	Terminating bool // the pod has a deletion timestamp
}

// EnsureNamespace creates a namespace unless it exists.
func (c *Cluster) EnsureNamespace(ctx context.Context, name string) error {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
	_, err := c.Client.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		return nil
	}
	return err
}

// CreateService creates svc (in its namespace, which must exist) and returns
// it as stored, with the ClusterIPs the apiserver allocated.
func (c *Cluster) CreateService(ctx context.Context, svc *corev1.Service) (*corev1.Service, error) {
	return c.Client.CoreV1().Services(svc.Namespace).Create(ctx, svc, metav1.CreateOptions{})
}

// ClusterIPService is a Service of type ClusterIP selecting app=name, with
// ports, or port http 80 when none are given.
func ClusterIPService(ns, name string, ports ...corev1.ServicePort) *corev1.Service {
	if len(ports) == 0 {
		ports = []corev1.ServicePort{{Name: "http", Protocol: corev1.ProtocolTCP, Port: 80}}
	}
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec:       corev1.ServiceSpec{Selector: map[string]string{"app": name}, Ports: ports},
	}
}

// SetEndpoints replaces the EndpointSlices of svc with slices for eps, written
// as the endpointslice controller writes them: one address family per slice,
// at most 100 endpoints each, the Service's ports with their target ports,
// ready=false for not-ready or terminating pods unless the Service publishes
// not-ready addresses. namedTargetPorts resolves target ports given by name
// (the container port the pods declare under that name).
func (c *Cluster) SetEndpoints(ctx context.Context, svc *corev1.Service, eps []Endpoint, namedTargetPorts map[string]int32) error {
	ports, err := slicePorts(svc, namedTargetPorts)
	if err != nil {
		return err
	}
	byFamily := map[discoveryv1.AddressType][]discoveryv1.Endpoint{}
	for _, ep := range eps {
		family, err := addressType(ep.IP)
		if err != nil {
			return err
		}
		byFamily[family] = append(byFamily[family], sliceEndpoint(ep, svc))
	}

	api := c.Client.DiscoveryV1().EndpointSlices(svc.Namespace)
	want := map[string]*discoveryv1.EndpointSlice{}
	families := []discoveryv1.AddressType{discoveryv1.AddressTypeIPv4, discoveryv1.AddressTypeIPv6}
	for _, family := range families {
		all := byFamily[family]
		for i := 0; i < len(all); i += maxEndpointsPerSlice {
			end := min(i+maxEndpointsPerSlice, len(all))
			name := fmt.Sprintf("%s-%s-%d", svc.Name, map[discoveryv1.AddressType]string{
				discoveryv1.AddressTypeIPv4: "v4", discoveryv1.AddressTypeIPv6: "v6"}[family], i/maxEndpointsPerSlice)
			want[name] = &discoveryv1.EndpointSlice{
				ObjectMeta: metav1.ObjectMeta{
					Name:      name,
					Namespace: svc.Namespace,
					Labels: map[string]string{
						discoveryv1.LabelServiceName: svc.Name,
						discoveryv1.LabelManagedBy:   "endpointslice-controller.k8s.io",
					},
					OwnerReferences: []metav1.OwnerReference{{
						APIVersion: "v1", Kind: "Service", Name: svc.Name, UID: svc.UID,
						Controller: ptr(true), BlockOwnerDeletion: ptr(true),
					}},
				},
				AddressType: family,
				Endpoints:   all[i:end],
				Ports:       ports,
			}
		}
	}

	existing, err := api.List(ctx, metav1.ListOptions{LabelSelector: discoveryv1.LabelServiceName + "=" + svc.Name})
	if err != nil {
		return err
	}
	for i := range existing.Items {
		old := &existing.Items[i]
		slice, keep := want[old.Name]
		if !keep {
			if err := api.Delete(ctx, old.Name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
				return err
			}
			continue
		}
		slice.ResourceVersion = old.ResourceVersion
		if _, err := api.Update(ctx, slice, metav1.UpdateOptions{}); err != nil {
			return err
		}
		delete(want, old.Name)
	}
	for _, name := range slices.Sorted(maps.Keys(want)) {
		if _, err := api.Create(ctx, want[name], metav1.CreateOptions{}); err != nil {
			return err
		}
	}
	return nil
}

func sliceEndpoint(ep Endpoint, svc *corev1.Service) discoveryv1.Endpoint {
	ready := svc.Spec.PublishNotReadyAddresses || (!ep.NotReady && !ep.Terminating)
	out := discoveryv1.Endpoint{
		Addresses: []string{ep.IP},
		Conditions: discoveryv1.EndpointConditions{
			Ready:       ptr(ready),
			Serving:     ptr(!ep.NotReady),
			Terminating: ptr(ep.Terminating),
		},
	}
	if ep.Hostname != "" {
		out.Hostname = ptr(ep.Hostname)
	}
	if ep.NodeName != "" {
		out.NodeName = ptr(ep.NodeName)
	}
	if ep.Pod != "" {
		out.TargetRef = &corev1.ObjectReference{Kind: "Pod", Namespace: svc.Namespace, Name: ep.Pod}
	}
	return out
}

func slicePorts(svc *corev1.Service, named map[string]int32) ([]discoveryv1.EndpointPort, error) {
	var ports []discoveryv1.EndpointPort
	for _, p := range svc.Spec.Ports {
		target := p.Port
		switch {
		case p.TargetPort.Type == intstr.String:
			port, ok := named[p.TargetPort.StrVal]
			if !ok {
				return nil, fmt.Errorf("service %s/%s: no port given for named target port %q", svc.Namespace, svc.Name, p.TargetPort.StrVal)
			}
			target = port
		case p.TargetPort.IntVal != 0:
			target = p.TargetPort.IntVal
		}
		ports = append(ports, discoveryv1.EndpointPort{
			Name:        ptr(p.Name),
			Protocol:    ptr(p.Protocol),
			Port:        ptr(target),
			AppProtocol: p.AppProtocol,
		})
	}
	return ports, nil
}

func addressType(ip string) (discoveryv1.AddressType, error) {
	parsed := net.ParseIP(ip)
	switch {
	case parsed == nil:
		return "", fmt.Errorf("endpoint address %q is not an IP address", ip)
	case parsed.To4() != nil:
		return discoveryv1.AddressTypeIPv4, nil
	default:
		return discoveryv1.AddressTypeIPv6, nil
	}
}

func ptr[T any](v T) *T { return &v }
