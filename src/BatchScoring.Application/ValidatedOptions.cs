using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace BatchScoring.Application;

public static class ValidatedOptions
{
    /// <summary>
    /// Binds <typeparamref name="TOptions"/> to <paramref name="section"/> and validates it at start-up with the options
    /// class's own <c>Validate()</c>, which names each bad setting.
    /// </summary>
    public static IServiceCollection AddValidatedOptions<TOptions>(
        this IServiceCollection services, string section, Func<TOptions, IEnumerable<string>> validate)
        where TOptions : class
    {
        services.AddOptions<TOptions>().BindConfiguration(section).ValidateOnStart();
        services.AddSingleton<IValidateOptions<TOptions>>(new OptionsValidator<TOptions>(validate));
        return services;
    }

    private sealed class OptionsValidator<TOptions>(Func<TOptions, IEnumerable<string>> validate) : IValidateOptions<TOptions>
        where TOptions : class
    {
        public ValidateOptionsResult Validate(string? name, TOptions options)
        {
            var failures = validate(options).ToList();
            return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
        }
    }
}
