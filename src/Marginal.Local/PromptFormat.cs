using System.Text;
using LLama;
using Microsoft.Extensions.AI;

namespace Marginal.Local;

/// <summary>
/// Turns chat messages into the model's prompt text. The model's own template (GGUF key <c>tokenizer.chat_template</c>)
/// is used when the file has one that llama.cpp recognises. Otherwise the fallback is ChatML
/// (<c>&lt;|im_start|&gt;role\ncontent&lt;|im_end|&gt;\n</c> per message, then <c>&lt;|im_start|&gt;assistant\n</c>),
/// the format llama.cpp's own server falls back to for a model without a template.
/// Thread-safe: each call builds its own template object.
/// </summary>
public sealed class PromptFormat
{
    public const string TemplateKey = "tokenizer.chat_template";

    private readonly LLamaWeights? _weights;

    private PromptFormat(LLamaWeights? weights) => _weights = weights;

    /// <summary>True when the model's own template is used, false for the ChatML fallback.</summary>
    public bool UsesModelTemplate => _weights is not null;

    public static PromptFormat For(LLamaWeights weights)
    {
        if (!weights.Metadata.ContainsKey(TemplateKey))
        {
            return new PromptFormat(null);
        }
        var model = new PromptFormat(weights);
        try
        {
            // A template llama.cpp does not recognise fails here, once, rather than on a request.
            model.Format([new ChatMessage(ChatRole.User, "probe")]);
            return model;
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            return new PromptFormat(null);
        }
    }

    public string Format(IEnumerable<ChatMessage> messages)
    {
        if (_weights is null)
        {
            return ChatML(messages);
        }
        var template = new LLamaTemplate(_weights) { AddAssistant = true };
        foreach (var message in messages)
        {
            template.Add(message.Role.Value, message.Text);
        }
        return Encoding.UTF8.GetString(template.Apply());
    }

    internal static string ChatML(IEnumerable<ChatMessage> messages)
    {
        var text = new StringBuilder();
        foreach (var message in messages)
        {
            text.Append("<|im_start|>").Append(message.Role.Value).Append('\n').Append(message.Text).Append("<|im_end|>\n");
        }
        return text.Append("<|im_start|>assistant\n").ToString();
    }
}
