/// Weft's release version.
public enum WeftVersion {
    public static let current = "0.1.0-dev"
}
