//! Kubernetes API removals, 1.16 through 1.32, from the Kubernetes
//! "Deprecated API Migration Guide" (kubernetes.io/docs/reference/using-api/
//! deprecation-guide/). Used to explain why green does not serve an
//! apiVersion and what replaces it, and to warn about removals to come.

/// One removed (or to-be-removed) apiVersion of a kind.
pub struct Removal {
    pub api_version: &'static str,
    pub kind: &'static str,
    /// The Kubernetes minor release that no longer serves it.
    pub removed_in: u32,
    /// What to use instead (`None`: no replacement API).
    pub replacement: Option<&'static str>,
}

const fn r(
    api_version: &'static str,
    kind: &'static str,
    removed_in: u32,
    replacement: Option<&'static str>,
) -> Removal {
    Removal {
        api_version,
        kind,
        removed_in,
        replacement,
    }
}

pub const REMOVALS: &[Removal] = &[
    // v1.16
    r("extensions/v1beta1", "Deployment", 16, Some("apps/v1")),
    r("apps/v1beta1", "Deployment", 16, Some("apps/v1")),
    r("apps/v1beta2", "Deployment", 16, Some("apps/v1")),
    r("extensions/v1beta1", "DaemonSet", 16, Some("apps/v1")),
    r("apps/v1beta2", "DaemonSet", 16, Some("apps/v1")),
    r("extensions/v1beta1", "ReplicaSet", 16, Some("apps/v1")),
    r("apps/v1beta1", "ReplicaSet", 16, Some("apps/v1")),
    r("apps/v1beta2", "ReplicaSet", 16, Some("apps/v1")),
    r("apps/v1beta1", "StatefulSet", 16, Some("apps/v1")),
    r("apps/v1beta2", "StatefulSet", 16, Some("apps/v1")),
    r(
        "extensions/v1beta1",
        "NetworkPolicy",
        16,
        Some("networking.k8s.io/v1"),
    ),
    r(
        "extensions/v1beta1",
        "PodSecurityPolicy",
        16,
        Some("policy/v1beta1"),
    ),
    // v1.22
    r(
        "admissionregistration.k8s.io/v1beta1",
        "MutatingWebhookConfiguration",
        22,
        Some("admissionregistration.k8s.io/v1"),
    ),
    r(
        "admissionregistration.k8s.io/v1beta1",
        "ValidatingWebhookConfiguration",
        22,
        Some("admissionregistration.k8s.io/v1"),
    ),
    r(
        "apiextensions.k8s.io/v1beta1",
        "CustomResourceDefinition",
        22,
        Some("apiextensions.k8s.io/v1"),
    ),
    r(
        "apiregistration.k8s.io/v1beta1",
        "APIService",
        22,
        Some("apiregistration.k8s.io/v1"),
    ),
    r(
        "authentication.k8s.io/v1beta1",
        "TokenReview",
        22,
        Some("authentication.k8s.io/v1"),
    ),
    r(
        "authorization.k8s.io/v1beta1",
        "SubjectAccessReview",
        22,
        Some("authorization.k8s.io/v1"),
    ),
    r(
        "authorization.k8s.io/v1beta1",
        "LocalSubjectAccessReview",
        22,
        Some("authorization.k8s.io/v1"),
    ),
    r(
        "authorization.k8s.io/v1beta1",
        "SelfSubjectAccessReview",
        22,
        Some("authorization.k8s.io/v1"),
    ),
    r(
        "certificates.k8s.io/v1beta1",
        "CertificateSigningRequest",
        22,
        Some("certificates.k8s.io/v1"),
    ),
    r(
        "coordination.k8s.io/v1beta1",
        "Lease",
        22,
        Some("coordination.k8s.io/v1"),
    ),
    r(
        "extensions/v1beta1",
        "Ingress",
        22,
        Some("networking.k8s.io/v1"),
    ),
    r(
        "networking.k8s.io/v1beta1",
        "Ingress",
        22,
        Some("networking.k8s.io/v1"),
    ),
    r(
        "networking.k8s.io/v1beta1",
        "IngressClass",
        22,
        Some("networking.k8s.io/v1"),
    ),
    r(
        "rbac.authorization.k8s.io/v1beta1",
        "ClusterRole",
        22,
        Some("rbac.authorization.k8s.io/v1"),
    ),
    r(
        "rbac.authorization.k8s.io/v1beta1",
        "ClusterRoleBinding",
        22,
        Some("rbac.authorization.k8s.io/v1"),
    ),
    r(
        "rbac.authorization.k8s.io/v1beta1",
        "Role",
        22,
        Some("rbac.authorization.k8s.io/v1"),
    ),
    r(
        "rbac.authorization.k8s.io/v1beta1",
        "RoleBinding",
        22,
        Some("rbac.authorization.k8s.io/v1"),
    ),
    r(
        "scheduling.k8s.io/v1beta1",
        "PriorityClass",
        22,
        Some("scheduling.k8s.io/v1"),
    ),
    r(
        "storage.k8s.io/v1beta1",
        "CSIDriver",
        22,
        Some("storage.k8s.io/v1"),
    ),
    r(
        "storage.k8s.io/v1beta1",
        "CSINode",
        22,
        Some("storage.k8s.io/v1"),
    ),
    r(
        "storage.k8s.io/v1beta1",
        "StorageClass",
        22,
        Some("storage.k8s.io/v1"),
    ),
    r(
        "storage.k8s.io/v1beta1",
        "VolumeAttachment",
        22,
        Some("storage.k8s.io/v1"),
    ),
    // v1.25
    r("batch/v1beta1", "CronJob", 25, Some("batch/v1")),
    r(
        "discovery.k8s.io/v1beta1",
        "EndpointSlice",
        25,
        Some("discovery.k8s.io/v1"),
    ),
    r(
        "events.k8s.io/v1beta1",
        "Event",
        25,
        Some("events.k8s.io/v1"),
    ),
    r(
        "autoscaling/v2beta1",
        "HorizontalPodAutoscaler",
        25,
        Some("autoscaling/v2"),
    ),
    r(
        "policy/v1beta1",
        "PodDisruptionBudget",
        25,
        Some("policy/v1"),
    ),
    r("policy/v1beta1", "PodSecurityPolicy", 25, None),
    r(
        "node.k8s.io/v1beta1",
        "RuntimeClass",
        25,
        Some("node.k8s.io/v1"),
    ),
    // v1.26
    r(
        "flowcontrol.apiserver.k8s.io/v1beta1",
        "FlowSchema",
        26,
        Some("flowcontrol.apiserver.k8s.io/v1"),
    ),
    r(
        "flowcontrol.apiserver.k8s.io/v1beta1",
        "PriorityLevelConfiguration",
        26,
        Some("flowcontrol.apiserver.k8s.io/v1"),
    ),
    r(
        "autoscaling/v2beta2",
        "HorizontalPodAutoscaler",
        26,
        Some("autoscaling/v2"),
    ),
    // v1.27
    r(
        "storage.k8s.io/v1beta1",
        "CSIStorageCapacity",
        27,
        Some("storage.k8s.io/v1"),
    ),
    // v1.29
    r(
        "flowcontrol.apiserver.k8s.io/v1beta2",
        "FlowSchema",
        29,
        Some("flowcontrol.apiserver.k8s.io/v1"),
    ),
    r(
        "flowcontrol.apiserver.k8s.io/v1beta2",
        "PriorityLevelConfiguration",
        29,
        Some("flowcontrol.apiserver.k8s.io/v1"),
    ),
    // v1.32
    r(
        "flowcontrol.apiserver.k8s.io/v1beta3",
        "FlowSchema",
        32,
        Some("flowcontrol.apiserver.k8s.io/v1"),
    ),
    r(
        "flowcontrol.apiserver.k8s.io/v1beta3",
        "PriorityLevelConfiguration",
        32,
        Some("flowcontrol.apiserver.k8s.io/v1"),
    ),
];

pub fn find(api_version: &str, kind: &str) -> Option<&'static Removal> {
    REMOVALS
        .iter()
        .find(|r| r.api_version == api_version && r.kind == kind)
}

/// What replaces a removed apiVersion, in words.
pub fn advice(api_version: &str, kind: &str) -> String {
    match find(api_version, kind) {
        Some(Removal {
            replacement: Some(to),
            removed_in,
            ..
        }) => {
            format!("{kind} {api_version} was removed in Kubernetes 1.{removed_in}: use {to}")
        }
        Some(Removal { removed_in, .. }) => {
            format!("{kind} {api_version} was removed in Kubernetes 1.{removed_in} with no replacement API")
        }
        None => format!("green does not serve {kind} {api_version} (a CRD not installed there?)"),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_table_names_replacements() {
        assert_eq!(
            super::find("networking.k8s.io/v1beta1", "Ingress")
                .unwrap()
                .replacement,
            Some("networking.k8s.io/v1")
        );
        assert_eq!(
            super::find("policy/v1beta1", "PodDisruptionBudget")
                .unwrap()
                .removed_in,
            25
        );
        assert!(super::advice("policy/v1beta1", "PodSecurityPolicy").contains("no replacement"));
        assert!(super::find("apps/v1", "Deployment").is_none());
    }
}
