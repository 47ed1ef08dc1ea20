import Foundation

/// Draws the offline stills with ffmpeg: a full-frame vertical gradient plus text (drawtext with the
/// DejaVu font, from a `textfile=` so nothing needs escaping), one PNG at the render size.
struct StillImageDrawer: Sendable {
    var settings: RenderSettings
    var tools: ToolLocator
    var fonts: FontResolver

    init(settings: RenderSettings, tools: ToolLocator, fonts: FontResolver) {
        self.settings = settings
        self.tools = tools
        self.fonts = fonts
    }

    /// What a still looks like.
    enum Composition: Sendable {
        /// A scene: a darker band across the upper middle with the description, and a small label.
        case scene
        /// A B-roll shot: a thin grid over the gradient, the description near the top, no label.
        case broll
        /// A plain card: the label and the text centred.
        case card
    }

    /// Draws `text` (and `label`) on a `gradient` into `file`.
    func draw(
        _ composition: Composition,
        text: String,
        label: String,
        gradient: Palette.Gradient,
        to file: URL
    ) async throws {
        let ffmpeg = try FFmpeg(tools: tools, timeout: settings.toolTimeout)
        let font = try await fonts.fontFile()
        let directory = file.deletingLastPathComponent()
        let stem = file.deletingPathExtension().lastPathComponent
        let textFile = "\(stem).text.txt"
        let labelFile = "\(stem).label.txt"
        defer {
            try? FileManager.default.removeItem(at: directory.appendingPathComponent(textFile))
            try? FileManager.default.removeItem(at: directory.appendingPathComponent(labelFile))
        }

        let (width, height, short) = (settings.width, settings.height, settings.shortSide)
        let textSize = composition == .broll ? short * 11 / 200 : short * 13 / 200
        let textWidth = Int(Double(width) * (composition == .broll ? 0.84 : 0.8))
        let lines = FilterText.wrapped(
            text,
            width: FilterText.charactersPerLine(width: textWidth, fontSize: textSize),
            maxLines: composition == .broll ? 4 : 6
        )
        try FilterText.write(lines, to: directory.appendingPathComponent(textFile))
        try FilterText.write([label.uppercased()], to: directory.appendingPathComponent(labelFile))

        let labelSize = short * 9 / 250
        let margin = short / 18
        var filters: [String] = []
        switch composition {
        case .scene:
            filters.append("drawbox=x=0:y=ih*0.2:w=iw:h=ih*0.46:color=black@0.25:t=fill")
            filters.append(
                FilterText.drawtext(
                    font: font,
                    textFile: labelFile,
                    size: labelSize,
                    x: "\(margin)",
                    y: "\(margin)",
                    color: "white@0.8"
                )
            )
            filters.append(
                FilterText.drawtext(
                    font: font,
                    textFile: textFile,
                    size: textSize,
                    x: "(w-text_w)/2",
                    y: "h*0.43-text_h/2"
                )
            )
        case .broll:
            filters.append("drawgrid=w=iw/12:h=ih/12:t=2:c=white@0.12")
            filters.append(
                FilterText.drawtext(
                    font: font,
                    textFile: textFile,
                    size: textSize,
                    x: "w*0.08",
                    y: "h*0.12",
                    box: "black@0.3"
                )
            )
        case .card:
            filters.append(
                FilterText.drawtext(
                    font: font,
                    textFile: labelFile,
                    size: labelSize * 3 / 2,
                    x: "(w-text_w)/2",
                    y: "h*0.4-text_h",
                    color: "white@0.9"
                )
            )
            filters.append(
                FilterText.drawtext(
                    font: font,
                    textFile: textFile,
                    size: textSize * 3 / 4,
                    x: "(w-text_w)/2",
                    y: "h*0.46",
                    color: "white@0.6"
                )
            )
        }
        let source =
            "gradients=s=\(width)x\(height):c0=\(gradient.top):c1=\(gradient.bottom)"
            + ":x0=0:y0=0:x1=0:y1=\(height - 1):speed=0.00001"
        try await ffmpeg.run(
            [
                "-f", "lavfi", "-i", source, "-vf", filters.joined(separator: ","), "-frames:v", "1", "-update", "1",
                file.lastPathComponent,
            ],
            in: directory
        )
    }
}

/// Makes scene visuals and B-roll stills offline: a gradient from the episode's ``Palette`` with the
/// prompt written on it, as `<workspace>/<item>.png` at the render size.
struct OfflineImageProvider: ImageProvider {
    static let providerName = "offline"

    var drawer: StillImageDrawer

    init(settings: RenderSettings = .landscape, tools: ToolLocator = .environment, fonts: FontResolver? = nil) {
        self.drawer = StillImageDrawer(settings: settings, tools: tools, fonts: fonts ?? FontResolver(tools: tools))
    }

    func image(for request: ImageRequest, context: CallContext) async throws -> Image {
        let workspace = try context.requireWorkspace(for: "image")
        context.meter.free()
        let palette = Palette(episodeId: context.episodeId, topic: context.topic)
        let number = request.number
        let file = workspace.appendingPathComponent("\(request.item).png")
        switch request.purpose {
        case .scene:
            try await drawer.draw(
                .scene,
                text: request.prompt,
                label: "Scene \(number)",
                gradient: palette.scene(number),
                to: file
            )
        case .broll:
            try await drawer.draw(.broll, text: request.prompt, label: "", gradient: palette.broll(number), to: file)
        }
        return Image(
            item: request.item,
            path: file.path,
            duration: Image.defaultDuration(request.purpose),
            provider: Self.providerName
        )
    }
}
