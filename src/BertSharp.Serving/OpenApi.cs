using System.Text.Json.Nodes;

namespace BertSharp.Serving;

/// <summary>GET /openapi.json: the routes, their request and response shapes, and the errors, as OpenAPI 3.0.</summary>
public static class OpenApi
{
    public static JsonObject Document(BertService service)
    {
        JsonObject Ref(string name) => new() { ["$ref"] = $"#/components/schemas/{name}" };
        JsonObject Json(JsonNode schema) => new() { ["application/json"] = new JsonObject { ["schema"] = schema } };
        JsonObject Errors() => new()
        {
            ["400"] = new JsonObject { ["description"] = "bad input (malformed JSON, empty or mistyped inputs, an input too long, a pair for a model without pairs)", ["content"] = Json(Ref("Error")) },
            ["401"] = new JsonObject { ["description"] = "a missing or wrong API key", ["content"] = Json(Ref("Error")) },
            ["413"] = new JsonObject { ["description"] = "the body is over the size limit", ["content"] = Json(Ref("Error")) },
            ["429"] = new JsonObject { ["description"] = "the queue is full; retry later", ["content"] = Json(Ref("Error")) },
        };
        JsonObject Post(string summary, JsonNode request, JsonNode response)
        {
            var responses = Errors();
            responses["200"] = new JsonObject { ["description"] = "OK", ["content"] = Json(response) };
            return new JsonObject
            {
                ["post"] = new JsonObject
                {
                    ["summary"] = summary,
                    ["requestBody"] = new JsonObject { ["required"] = true, ["content"] = Json(request) },
                    ["responses"] = responses,
                },
            };
        }
        JsonObject Get(string summary, string contentType = "application/json") => new()
        {
            ["get"] = new JsonObject
            {
                ["summary"] = summary,
                ["responses"] = new JsonObject { ["200"] = new JsonObject { ["description"] = "OK", ["content"] = new JsonObject { [contentType] = new JsonObject() } } },
            },
        };
        JsonObject Text() => new() { ["oneOf"] = new JsonArray(new JsonObject { ["type"] = "string" }, new JsonObject { ["type"] = "array", ["items"] = new JsonObject { ["type"] = "string" } }) };
        return new JsonObject
        {
            ["openapi"] = "3.0.3",
            ["info"] = new JsonObject { ["title"] = $"BertSharp: {service.ModelId} ({service.Model.TaskName})", ["version"] = "1" },
            ["paths"] = new JsonObject
            {
                ["/embed"] = Post("Sentence embeddings (embedding models)",
                    new JsonObject { ["type"] = "object", ["required"] = new JsonArray("inputs"), ["properties"] = new JsonObject { ["inputs"] = Text(), ["normalize"] = new JsonObject { ["type"] = "boolean", ["default"] = true }, ["truncate"] = new JsonObject { ["type"] = "boolean" } } },
                    new JsonObject { ["type"] = "array", ["items"] = new JsonObject { ["type"] = "array", ["items"] = new JsonObject { ["type"] = "number" } } }),
                ["/predict"] = Post("Predictions: labels and probabilities (classify; multi-label: each label's sigmoid and whether it is predicted), a score (similarity; the cosine for embedding models), a tag per word (tag), an answer span (qa)",
                    new JsonObject
                    {
                        ["type"] = "object", ["required"] = new JsonArray("inputs"),
                        ["properties"] = new JsonObject
                        {
                            ["inputs"] = new JsonObject { ["description"] = "a text; a pair [text, pair]; {\"text\", \"pair\"}; {\"question\", \"context\"}; {\"words\": […]}; or a list of these (a batch)" },
                            ["truncate"] = new JsonObject { ["type"] = "boolean" },
                        },
                    },
                    new JsonObject { ["description"] = "one answer, or a list in the order of the inputs" }),
                ["/tokenize"] = Post("WordPiece tokens with ids and character offsets",
                    new JsonObject { ["type"] = "object", ["required"] = new JsonArray("inputs"), ["properties"] = new JsonObject { ["inputs"] = Text(), ["add_special_tokens"] = new JsonObject { ["type"] = "boolean", ["default"] = true } } },
                    new JsonObject { ["type"] = "array", ["items"] = new JsonObject { ["type"] = "array", ["items"] = Ref("Token") } }),
                ["/info"] = Get("The model, its task, labels and limits"),
                ["/health"] = Get("200 while the server is up"),
                ["/metrics"] = Get("Prometheus metrics", "text/plain"),
                ["/"] = Get("A page to try the model in a browser", "text/html"),
            },
            ["components"] = new JsonObject
            {
                ["schemas"] = new JsonObject
                {
                    ["Error"] = new JsonObject { ["type"] = "object", ["properties"] = new JsonObject { ["error"] = new JsonObject { ["type"] = "string" }, ["error_type"] = new JsonObject { ["type"] = "string" } } },
                    ["Token"] = new JsonObject
                    {
                        ["type"] = "object",
                        ["properties"] = new JsonObject
                        {
                            ["id"] = new JsonObject { ["type"] = "integer" }, ["text"] = new JsonObject { ["type"] = "string" }, ["special"] = new JsonObject { ["type"] = "boolean" },
                            ["start"] = new JsonObject { ["type"] = "integer", ["nullable"] = true }, ["stop"] = new JsonObject { ["type"] = "integer", ["nullable"] = true },
                        },
                    },
                },
                ["securitySchemes"] = new JsonObject { ["bearer"] = new JsonObject { ["type"] = "http", ["scheme"] = "bearer" } },
            },
        };
    }
}
