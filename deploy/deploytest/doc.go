// Package deploytest checks the deployment files (docker-compose.yml,
// .env.example, deploy/Dockerfile, deploy/k8s, deploy/grafana) without a
// Docker engine, a cluster or the network: it parses them and holds them to
// what the services actually read and serve. It has no non-test code.
package deploytest
