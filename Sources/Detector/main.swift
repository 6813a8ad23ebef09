print("k8s-version-check")
