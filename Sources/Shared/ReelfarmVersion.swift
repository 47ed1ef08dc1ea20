/// The software version of both executables, reported in HELLO, WELCOME and `--version`.
public enum ReelfarmVersion {
    public static let current = "0.1.0"
}
