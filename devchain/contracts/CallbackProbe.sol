// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

interface IFlashCallbacks {
    function uniswapV3SwapCallback(int256 amount0Delta, int256 amount1Delta, bytes calldata data) external;
    function uniswapV2Call(address sender, uint256 amount0, uint256 amount1, bytes calldata data) external;
}

/// @title CallbackProbe
/// @notice A contract posing as a pool, for tests only: it calls a target's swap
/// callbacks the way a real pool would, claiming tokens it is owed but never sent.
contract CallbackProbe {
    function probeConcentrated(address target, int256 amount0Delta, int256 amount1Delta, bytes calldata data)
        external
    {
        IFlashCallbacks(target).uniswapV3SwapCallback(amount0Delta, amount1Delta, data);
    }

    function probePair(address target, address sender, uint256 amount0, uint256 amount1, bytes calldata data)
        external
    {
        IFlashCallbacks(target).uniswapV2Call(sender, amount0, amount1, data);
    }

    function token0() external view returns (address) {
        return address(this);
    }

    function token1() external view returns (address) {
        return address(this);
    }
}
