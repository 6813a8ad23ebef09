print("k8s-upgrade")
