// How dlabd's Kubernetes backend reaches the cluster and shapes each attempt's objects: the
// `backend: {type: kubernetes, ...}` section of the server config (docs/deploy-kubernetes.md).
// A plain value type.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace dlab {

struct KubeOptions {
  std::string kubeconfig;  // "" : the in-cluster service account
  std::string context;     // kubeconfig context ("" : its current-context)
  // "" : the kubeconfig context's namespace, or the service account's, or "default"
  std::string namespace_;
  std::string image;  // for jobs whose spec names none; "" : such jobs cannot launch
  // Fetches the code snapshot (needs sh, wget and tar): the init container's image.
  std::string init_image = "busybox:1.36";
  std::string api_url;   // how pods reach dlabd: DLAB_API_URL and the snapshot download
  std::string data_dir;  // dlabd's data directory: mounted at the same path in every pod
  // The PersistentVolumeClaim that holds data_dir (checkpoints, outputs); "" : an emptyDir
  // (checkpoints die with the pod; only for trying things out).
  std::string data_claim;
  std::string code_mount = "/dlab/code";  // where the snapshot is unpacked in the pod
  std::string gpu_type_label = "nvidia.com/gpu.product";  // node label a GPU type matches
  std::string service_account;                            // "" : the namespace's default
  std::vector<std::string> image_pull_secrets;
  int master_port = 29500;  // MASTER_PORT on rank 0's pod
  int task_port = 2222;     // each task's port in TF_CONFIG
  int64_t ttl_after_finished_s = 3600;
};

}  // namespace dlab
