/**
 * Dawn for Node (the `webgpu` package) for jest, which runs CommonJS: the package's entry is an ES module using
 * import.meta, so jest maps `webgpu` here (jest.config.js) and loads the same native addon directly. The package's
 * wrapper only adds buffer unmapping on device.destroy(), which the tests don't use.
 */
const path = require('node:path');

const dir = path.dirname(require.resolve('webgpu/package.json'));
const arch = process.platform === 'darwin' ? 'universal' : process.arch;
module.exports = require(path.join(dir, 'dist', `${process.platform}-${arch}`, 'dawn.node'));
