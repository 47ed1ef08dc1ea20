import Hummingbird
import Logging

/// Builds the mock server: every route over one shared ``MockEngine``.
enum MockProviderApp {
    static func router(engine: MockEngine, startupConfig: MockConfig) -> Router<BasicRequestContext> {
        let router = Router()
        OpenAIRoutes(engine: engine).register(on: router)
        HuggingFaceRoutes(engine: engine).register(on: router)
        ElevenLabsRoutes(engine: engine).register(on: router)
        AdminRoutes(engine: engine, startupConfig: startupConfig).register(on: router)
        return router
    }

    /// The application, for `runService()` or HummingbirdTesting.
    static func application(
        config: MockConfig,
        engine: MockEngine? = nil,
        host: String = "127.0.0.1",
        port: Int = 0,
        logger: Logger = Logger(label: "mock-provider"),
        onServerRunning: @escaping @Sendable (_ host: String, _ port: Int) async -> Void = { _, _ in }
    ) -> some ApplicationProtocol {
        let engine = engine ?? MockEngine(config: config)
        return Application(
            router: router(engine: engine, startupConfig: config),
            // A fleet's workers open their connections in bursts: with the default backlog of 256 a burst of 300
            // overflowed the accept queue on a loaded machine, and dropped handshakes waited out a
            // retransmission past the client's connect timeout (LoadTests).
            configuration: .init(address: .hostname(host, port: port), serverName: "mock-provider", backlog: 1024),
            onServerRunning: { channel in
                let address = channel.localAddress
                await onServerRunning(address?.ipAddress ?? host, address?.port ?? port)
            },
            logger: logger
        )
    }
}
